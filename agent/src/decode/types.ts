import type { Detection } from '../types.js';
import type { ResizeTransform } from '../preprocess/transform.js';
import { ModelOutputError } from '../util/errors.js';
import type { Candidate } from './nms.js';

/** One output tensor as it comes back from an inference session (row-major). */
export interface OutputTensor {
  dims: readonly number[];
  data: Float32Array;
}

export type OutputMap = Record<string, OutputTensor>;

export interface DecodeContext {
  transform: ResizeTransform;
  labels: readonly string[];
  /** Output names in the model's order (decoders that take "the first output" use this). */
  outputNames: readonly string[];
}

/**
 * Throws ModelOutputError when a run's outputs read as NaN: `nanScores` of the `scores` score values the
 * decoder read in `output`, or a candidate above the threshold whose box is not finite. A NaN score
 * fails every threshold (`NaN >= t` is false) and was dropped as "nothing here", or passed every
 * `score < t` test and came out as a detection with a NaN score or box; either way a broken run (an
 * FP16 overflow, a damaged engine or weights) read as a real one. Thrown, the OTA health window counts
 * it against a new model, the privacy stage withholds images, and the pipeline logs and counts it.
 */
export function checkRun(output: string, nanScores: number, scores: number, cands: readonly Candidate[]): void {
  const badBoxes = cands.reduce((n, c) => n + (Number.isFinite(c.box.x + c.box.y + c.box.w + c.box.h) ? 0 : 1), 0);
  if (nanScores === 0 && badBoxes === 0) return;
  const what = [nanScores > 0 ? `${nanScores} of its ${scores} scores are NaN` : '', badBoxes > 0 ? `${badBoxes} box(es) above the threshold are not finite` : ''].filter(Boolean).join(' and ');
  throw new ModelOutputError(`Model output ${JSON.stringify(output)} is broken: ${what}; the run's detections cannot be trusted (an FP16/INT8 overflow, or a damaged engine or model file). Check the model with fleetctl model evaluate against its FP32 build.`);
}

/** The NaN values in `d`. */
export function countNaN(d: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < d.length; i++) if (d[i] !== d[i]) n++;
  return n;
}

/** Turns raw model outputs into detections with boxes in source pixels. Pure and synchronous. */
export type Decoder = (outputs: OutputMap, ctx: DecodeContext) => Detection[];
