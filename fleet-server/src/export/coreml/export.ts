/** ONNX bytes → `.mlmodel` bytes (NeuralNetwork spec), through the TFLite graph conversion (static shapes, folded transposes, fused ReLUs). */
import { decodeModel } from '../../convert/onnx/codec.js';
import { onnxToTflite, type ConvertOptions } from '../tflite/convert.js';
import { fuseActivations } from '../tflite/fuse.js';
import { tfliteToCoreml } from './from-tflite.js';
import { encodeMlModel } from './proto.js';
import type { CmlModel, CmlPrecision } from './layers.js';

export interface CoremlExportResult { bytes: Uint8Array; model: CmlModel }

export function exportCoreml(onnxBytes: Uint8Array, opts: { precision: CmlPrecision; outputs?: string[]; inputShapes?: ConvertOptions['inputShapes'] }): CoremlExportResult {
  const conv = onnxToTflite(decodeModel(Uint8Array.from(onnxBytes)), { outputs: opts.outputs, inputShapes: opts.inputShapes, target: 'coreml' });
  fuseActivations(conv.model);
  const model = tfliteToCoreml(conv.model, opts.precision);
  return { bytes: encodeMlModel(model), model };
}
