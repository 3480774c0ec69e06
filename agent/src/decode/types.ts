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
 * Throws ModelOutputError when a run's outputs read as NaN: `nanScores` of the `read` score values the
 * decoder read in `output`, or a candidate above the threshold whose score, class, box or key points
 * are not finite (an overflow to Infinity, Infinity × 0). A NaN score fails every threshold
 * (`NaN >= t` is false) and was dropped as "nothing here", or passed every `score < t` test and came
 * out as a detection with a NaN score or box; either way a broken run (an FP16 overflow, a damaged
 * engine or weights) read as a real one. Thrown, the OTA self-test and health window count it against
 * a new model, the privacy stage withholds images, and the pipeline logs and counts it.
 */
export function checkRun(output: string, nanScores: number, read: number, cands: readonly Candidate[]): void {
  let bad = 0;
  for (const c of cands) if (!finiteCandidate(c)) bad++;
  if (nanScores === 0 && bad === 0) return;
  const what = [nanScores > 0 ? `${nanScores} of the ${read} scores read are NaN` : '', bad > 0 ? `${bad} detection(s) above the threshold have a score, class or box that is not finite` : ''].filter(Boolean).join(' and ');
  throw new ModelOutputError(`Model output ${JSON.stringify(output)} is broken: ${what}; the run's detections cannot be trusted (an FP16/INT8 overflow, or a damaged engine or model file). Check the model with fleetctl model evaluate against its FP32 build.`);
}

function finiteCandidate(c: Candidate): boolean {
  if (!Number.isFinite(c.score + c.classId + c.box.x + c.box.y + c.box.w + c.box.h)) return false;
  return c.keypoints === undefined || c.keypoints.every((p) => Number.isFinite(p.x + p.y));
}

/** Turns raw model outputs into detections with boxes in source pixels. Pure and synchronous. */
export type Decoder = (outputs: OutputMap, ctx: DecodeContext) => Detection[];
