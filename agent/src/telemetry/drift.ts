/**
 * Input and output drift of one agent: input brightness and contrast (mean and standard deviation of
 * luma per frame), detection confidence and class mix, each compared by PSI (psi.ts) between a
 * baseline window (the first `baselineSize` observations after start or after `resetBaseline()`;
 * for the detection signals also after `resetDetectionBaseline()`, when the model changes)
 * and a sliding current window of the last `windowSize` observations. A signal is flagged when its
 * PSI passes `threshold` (default 0.25, "significant shift") with enough samples on both sides.
 */
import type { Detection, RgbImage } from '../types.js';
import { DRIFT_MAX_CLASSES, type DriftReport } from '../protocol/payloads.js';
import { histogram, psi, psiCategorical } from './psi.js';

export interface DriftOptions {
  baselineSize?: number;
  windowSize?: number;
  threshold?: number;
  /** Fewest observations per side before a signal can be judged. */
  minSamples?: number;
  /** Bins of the brightness / contrast / confidence histograms. */
  bins?: number;
}

class Ring {
  private readonly buf: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(v: number): void {
    if (this.buf.length < this.size) this.buf.push(v);
    else { this.buf[this.next] = v; this.next = (this.next + 1) % this.size; }
  }
  values(): readonly number[] { return this.buf; }
  get length(): number { return this.buf.length; }
  clear(): void { this.buf.length = 0; this.next = 0; }
}

/** Luma (BT.601 weights) mean and standard deviation over a pixel grid sampled every `step` pixels. */
export function frameStats(image: RgbImage, step = 4): { brightness: number; contrast: number } {
  const { width, height, data } = image;
  let n = 0; let sum = 0; let sumSq = 0;
  for (let y = 0; y < height; y += step) {
    let o = y * width * 3;
    for (let x = 0; x < width; x += step, o += 3 * step) {
      const l = 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2];
      sum += l; sumSq += l * l; n += 1;
    }
  }
  if (n === 0) return { brightness: 0, contrast: 0 };
  const mean = sum / n;
  return { brightness: mean, contrast: Math.sqrt(Math.max(0, sumSq / n - mean * mean)) };
}

export class DriftMonitor {
  private readonly baselineSize: number;
  private readonly threshold: number;
  private readonly minSamples: number;
  private readonly bins: number;
  private readonly base = { brightness: [] as number[], contrast: [] as number[], confidence: [] as number[], classes: new Map<string, number>(), classDetections: 0 };
  private readonly cur: { brightness: Ring; contrast: Ring; confidence: Ring; classes: Ring; classLabels: string[] };

  constructor(opts: DriftOptions = {}) {
    this.baselineSize = opts.baselineSize ?? 300;
    const windowSize = opts.windowSize ?? 300;
    this.threshold = opts.threshold ?? 0.25;
    this.minSamples = opts.minSamples ?? Math.min(50, windowSize);
    this.bins = opts.bins ?? 10;
    this.cur = { brightness: new Ring(windowSize), contrast: new Ring(windowSize), confidence: new Ring(windowSize * 4), classes: new Ring(windowSize * 4), classLabels: [] };
  }

  observeFrame(image: RgbImage): void {
    const s = frameStats(image);
    this.observeFrameStats(s);
  }

  observeFrameStats(s: { brightness: number; contrast: number }): void {
    if (this.base.brightness.length < this.baselineSize) {
      this.base.brightness.push(s.brightness);
      this.base.contrast.push(s.contrast);
      return;
    }
    this.cur.brightness.push(s.brightness);
    this.cur.contrast.push(s.contrast);
  }

  observeDetections(dets: readonly Pick<Detection, 'score' | 'label'>[]): void {
    const baselineOpen = this.base.confidence.length < this.baselineSize * 4;
    for (const d of dets) {
      if (baselineOpen) {
        this.base.confidence.push(d.score);
        this.base.classes.set(d.label, (this.base.classes.get(d.label) ?? 0) + 1);
        this.base.classDetections += 1;
      } else {
        this.cur.confidence.push(d.score);
        let idx = this.cur.classLabels.indexOf(d.label);
        if (idx < 0) { idx = this.cur.classLabels.length; this.cur.classLabels.push(d.label); }
        this.cur.classes.push(idx);
      }
    }
  }

  resetBaseline(): void {
    this.base.brightness = []; this.base.contrast = [];
    this.cur.brightness.clear(); this.cur.contrast.clear();
    this.resetDetectionBaseline();
  }

  /**
   * Starts the detection signals (confidence, class mix) over: what they measure is the model's output,
   * so another model (an OTA swap or rollback) needs its own baseline; compared with the previous
   * model's, a model with other score calibration stayed flagged until the agent restarted. The input
   * signals describe the camera, not the model, and keep theirs.
   */
  resetDetectionBaseline(): void {
    this.base.confidence = []; this.base.classes.clear(); this.base.classDetections = 0;
    this.cur.confidence.clear(); this.cur.classes.clear(); this.cur.classLabels = [];
  }

  report(): DriftReport {
    const out: DriftReport = {
      baselineReady: this.base.brightness.length >= this.baselineSize,
      threshold: this.threshold,
      flagged: false,
      psi: {},
      flags: [],
      current: { confidenceHistogram: histogram(this.cur.confidence.values(), this.bins, 0, 1), classMix: {} },
    };
    const b = this.cur.brightness.values();
    const c = this.cur.contrast.values();
    if (b.length > 0) out.current.brightnessMean = mean(b);
    if (c.length > 0) out.current.contrastMean = mean(c);
    const judge = (name: 'brightness' | 'contrast' | 'confidence', base: readonly number[], cur: readonly number[], max: number) => {
      if (base.length < this.minSamples || cur.length < this.minSamples) return;
      const v = psi(histogram(base, this.bins, 0, max), histogram(cur, this.bins, 0, max));
      out.psi[name] = round(v);
      if (v > this.threshold) out.flags.push(name);
    };
    judge('brightness', this.base.brightness, b, 255);
    // Standard deviation of 8-bit luma is at most 127.5 (half black, half white).
    judge('contrast', this.base.contrast, c, 128);
    judge('confidence', this.base.confidence, this.cur.confidence.values(), 1);
    const curClasses = new Map<string, number>();
    for (const i of this.cur.classes.values()) {
      const label = this.cur.classLabels[i];
      curClasses.set(label, (curClasses.get(label) ?? 0) + 1);
    }
    const curTotal = this.cur.classes.length;
    // The most frequent classes, as many as a telemetry message carries (PSI below uses them all).
    const mix = [...curClasses].sort((a, b) => b[1] - a[1]).slice(0, DRIFT_MAX_CLASSES);
    for (const [k, n] of mix) out.current.classMix[k] = round(n / curTotal);
    if (this.base.classDetections >= this.minSamples && curTotal >= this.minSamples) {
      const v = psiCategorical(this.base.classes, curClasses);
      out.psi.classMix = round(v);
      if (v > this.threshold) out.flags.push('classMix');
    }
    out.flagged = out.flags.length > 0;
    return out;
  }
}

function mean(v: readonly number[]): number {
  return v.reduce((s, x) => s + x, 0) / v.length;
}
function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
