/** ONNX file bytes → TFLite flatbuffer bytes, with a report of what was mapped. */
import { decodeModel } from '../../convert/onnx/codec.js';
import { onnxToTflite, type TfliteConversion } from './convert.js';
import { writeTflite } from './writer.js';
import { weightsToFp16 } from './fp16.js';

export type TflitePrecision = 'fp32' | 'fp16' | 'int8';

export interface TfliteExportOptions {
  precision: TflitePrecision;
  outputs?: string[];
}

export interface TfliteExportResult {
  bytes: Uint8Array;
  inputs: Array<{ name: string; shape: number[] }>;
  outputs: Array<{ name: string; shape: number[] }>;
  dropped: TfliteConversion['dropped'];
  operators: number;
  transposesRemoved: number;
  transposesLeft: number;
}

export function exportTflite(onnxBytes: Uint8Array, opts: TfliteExportOptions): TfliteExportResult {
  // Copy into a plain Uint8Array: on a Node Buffer `slice()` is a view, and the ONNX model helpers
  // rely on slice() copying when they realign initializer bytes.
  const conv = onnxToTflite(decodeModel(Uint8Array.from(onnxBytes)), { outputs: opts.outputs });
  const m = conv.model;
  if (opts.precision === 'fp16') weightsToFp16(m);
  return {
    bytes: writeTflite(m),
    inputs: m.inputs.map((i) => ({ name: m.tensors[i].name, shape: m.tensors[i].shape })),
    outputs: m.outputs.map((i) => ({ name: m.tensors[i].name, shape: m.tensors[i].shape })),
    dropped: conv.dropped,
    operators: m.operators.length,
    transposesRemoved: conv.transposesRemoved,
    transposesLeft: m.operators.filter((o) => o.code === 39).length,
  };
}
