/**
 * Calibrated range of one tensor from its streaming histogram, by method:
 * - minmax: the observed [min, max];
 * - percentile: |x| threshold at the given percentile of the folded histogram (default 99.999);
 * - entropy: the KL-divergence threshold search (entropy.ts), on tensors with at least
 *   ENTROPY_MIN_SAMPLES_PER_BIN values per histogram bin; smaller ones keep [min, max].
 * The threshold t clips the observed range to [max(min, -t), min(max, t)], so a tensor that is
 * never negative (after ReLU) keeps its lower bound at 0.
 */
import { klThresholdBins } from './entropy.js';
import type { StreamingHistogram } from './histogram.js';

/**
 * The KL search compares densities over 2048 bins; a tensor seen only a few thousand times (the
 * per-frame channel vectors of squeeze-excite blocks: 768–23040 values from 32 frames) leaves most
 * bins empty, and the search then clipped 37% of one such gate's values. Those keep their
 * min/max range; feature maps (≥ 10⁵ values a frame) are far above this.
 */
export const ENTROPY_MIN_SAMPLES_PER_BIN = 16;

export type CalibrationMethod = 'minmax' | 'entropy' | 'percentile';

export interface TensorRange {
  min: number;
  max: number;
}

export interface RangeOptions {
  method: CalibrationMethod;
  /** Percentile of |x| for the percentile method, in percent. */
  percentile?: number;
  /** Quantization levels the KL search merges into: 128 for symmetric int8 (TensorRT), 256 when a non-negative tensor gets the full asymmetric range. */
  asymmetric?: boolean;
}

export function rangeFromHistogram(h: StreamingHistogram, opts: RangeOptions): TensorRange {
  if (h.total === 0) return { min: 0, max: 0 };
  if (opts.method === 'minmax' || h.absMax === 0) return { min: h.min, max: h.max };
  const folded = h.folded();
  const binW = h.absMax / folded.length;
  let t: number;
  if (opts.method === 'percentile') {
    const pct = opts.percentile ?? 99.999;
    if (!(pct > 0 && pct <= 100)) throw new RangeError(`Expected a percentile in (0, 100] but received ${pct}`);
    const want = (h.total * pct) / 100;
    let acc = 0, i = 0;
    for (; i < folded.length; i++) { acc += folded[i]; if (acc >= want) break; }
    t = Math.min(folded.length, i + 1) * binW;
  } else {
    if (h.total < ENTROPY_MIN_SAMPLES_PER_BIN * folded.length) return { min: h.min, max: h.max };
    const oneSided = h.min >= 0 || h.max <= 0;
    const levels = opts.asymmetric && oneSided ? 256 : 128;
    t = klThresholdBins(folded, levels, folded.length > 1024 ? 2 : 1) * binW;
  }
  return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
}
