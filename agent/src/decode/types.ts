import type { Detection } from '../types.js';
import type { ResizeTransform } from '../preprocess/transform.js';

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

/** Turns raw model outputs into detections with boxes in source pixels. Pure and synchronous. */
export type Decoder = (outputs: OutputMap, ctx: DecodeContext) => Detection[];
