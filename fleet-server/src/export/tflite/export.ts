/** ONNX file bytes → TFLite flatbuffer bytes, with a report of what was mapped. */
import { decodeModel } from '../../convert/onnx/codec.js';
import { ModelError } from '../../../../agent/src/util/errors.js';
import { onnxToTflite, type ConvertOptions, type TfliteConversion } from './convert.js';
import { modelInputSize } from '../../../../agent/src/preprocess/tensor.js';
import type { PreprocessSpec } from '../../../../agent/src/model/metadata.js';
import { writeTflite } from './writer.js';
import { weightsToFp16 } from './fp16.js';
import { dropUnusedTensors, fuseActivations, fuseHardSwish } from './fuse.js';
import { quantizeTfliteInt8, tensorsNeedingRanges, type Int8Report, type Range } from './int8.js';

export type TflitePrecision = 'fp32' | 'fp16' | 'int8';

export interface TfliteExportOptions {
  precision: TflitePrecision;
  outputs?: string[];
  /** Shapes the device feeds the graph inputs (fills their dynamic sizes; see ConvertOptions). */
  inputShapes?: ConvertOptions['inputShapes'];
  /** Calibration ranges per ONNX tensor name; required for int8 (see tfliteCalibrationTensors). */
  ranges?: ReadonlyMap<string, Range>;
  /** INT8: convs that amplify one input step into more output steps than this stay float (int8.ts). */
  maxAmplification?: number;
  /** INT8 mixed precision: ONNX activation names kept float (from the sensitivity search). */
  keepFloat?: readonly string[];
  /** INT8: the same ONNX model before GPTQ (tfliteRanges' `unroundedBytes`): ops that run float take their weights from it. */
  unroundedOnnx?: Uint8Array;
}

export interface TfliteExportResult {
  bytes: Uint8Array;
  inputs: Array<{ name: string; shape: number[] }>;
  outputs: Array<{ name: string; shape: number[] }>;
  dropped: TfliteConversion['dropped'];
  operators: number;
  fusedActivations: number;
  /** INT8: convs kept float because they amplify quantization error. */
  floatIslands: number;
  transposesRemoved: number;
  transposesLeft: number;
}

export function exportTflite(onnxBytes: Uint8Array, opts: TfliteExportOptions): TfliteExportResult {
  // Copy into a plain Uint8Array: on a Node Buffer `slice()` is a view, and the ONNX model helpers
  // rely on slice() copying when they realign initializer bytes.
  const conv = onnxToTflite(decodeModel(Uint8Array.from(onnxBytes)), { outputs: opts.outputs, inputShapes: opts.inputShapes });
  const m = conv.model;
  let int8: Int8Report | undefined;
  const hardSwish = opts.precision === 'int8' ? fuseHardSwish(m) : 0;
  const fused = fuseActivations(m) + hardSwish;
  if (opts.precision === 'fp16') weightsToFp16(m);
  if (opts.precision === 'int8') {
    if (!opts.ranges) throw new ModelError('INT8 TFLite export needs calibration ranges; run it with calibration frames (--calib)');
    // The NHWC layout keeps the name of the ONNX tensor before its `/__nchw` Transpose.
    const keepFloat = opts.keepFloat ? new Set(opts.keepFloat.flatMap((t) => [t, t.replace(/\/__nchw$/, '')])) : undefined;
    let unroundedConstants: Map<number, Uint8Array> | undefined;
    if (opts.unroundedOnnx) {
      // Same graph, other weight values: converted and fused the same way, its tensors line up by index.
      const u = onnxToTflite(decodeModel(Uint8Array.from(opts.unroundedOnnx)), { outputs: opts.outputs, inputShapes: opts.inputShapes }).model;
      fuseHardSwish(u);
      fuseActivations(u);
      if (u.tensors.length !== m.tensors.length) throw new ModelError('INT8 export: the unrounded model does not convert to the same graph as the prepared one');
      unroundedConstants = new Map();
      u.tensors.forEach((t, i) => { if (t.data && m.tensors[i].data && t.name === m.tensors[i].name) unroundedConstants!.set(i, t.data); });
    }
    int8 = quantizeTfliteInt8(m, opts.ranges, { maxAmplification: opts.maxAmplification, keepFloat, unroundedConstants });
  }
  dropUnusedTensors(m);
  return {
    bytes: writeTflite(m),
    inputs: m.inputs.map((i) => ({ name: m.tensors[i].name, shape: m.tensors[i].shape })),
    outputs: m.outputs.map((i) => ({ name: m.tensors[i].name, shape: m.tensors[i].shape })),
    dropped: conv.dropped,
    operators: m.operators.length,
    fusedActivations: fused,
    floatIslands: int8?.floatIslands ?? 0,
    transposesRemoved: conv.transposesRemoved,
    transposesLeft: m.operators.filter((o) => o.code === 39).length,
  };
}

/** ONNX tensor names whose calibration ranges an INT8 export of this model reads. */
export function tfliteCalibrationTensors(onnxBytes: Uint8Array, outputs?: string[], inputShapes?: ConvertOptions['inputShapes']): string[] {
  const conv = onnxToTflite(decodeModel(Uint8Array.from(onnxBytes)), { outputs, inputShapes });
  fuseHardSwish(conv.model);
  fuseActivations(conv.model);
  return tensorsNeedingRanges(conv.model);
}

/** The shape the agent feeds a model input (agent/src/preprocess/tensor.ts toTensor): batch 1, 3 channels, modelInputSize. */
export function fedInputShape(p: Pick<PreprocessSpec, 'width' | 'height' | 'multipleOf' | 'layout'>): number[] {
  const { width, height } = modelInputSize(p);
  return p.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
}
