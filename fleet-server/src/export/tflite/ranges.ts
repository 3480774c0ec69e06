/**
 * Calibration for the INT8 TFLite export, from the INT8 pipeline (fleet-server/src/quantize): the
 * ONNX model is first prepared as for the QDQ model (equalization, rescaling across hard-swish, GPTQ
 * weight rounding: prepare.ts), then runs in onnxruntime with the needed tensors added as outputs,
 * one histogram per tensor, and a range per tensor by the chosen method. The export must convert the
 * returned `onnxBytes`, not the original: the ranges and the int8 weights belong to the prepared model.
 */
import { decodeModel, encodeModel } from '../../convert/onnx/codec.js';
import { constantsToInitializers } from '../../convert/onnx/passes.js';
import { calibrate } from '../../quantize/calibrate.js';
import { rangeFromHistogram, type CalibrationMethod } from '../../quantize/ranges.js';
import { modelInputs, type FrameSelection } from '../../quantize/frames.js';
import { prepareForInt8, type PrepareReport } from '../../quantize/prepare.js';
import { TFLITE_ACTIVATION_FUSES } from './fuse.js';
import { planQuantization } from '../../quantize/qdq.js';
import { chooseFloatActivations } from '../../quantize/sensitivity.js';
import type { PreprocessSpec } from '../../../../agent/src/model/metadata.js';
import type { ModelInput } from '../../../../agent/src/preprocess/preprocess.js';
import { fedInputShape, tfliteCalibrationTensors } from './export.js';
import type { Range } from './int8.js';

export interface TfliteRangeOptions {
  onnxBytes: Uint8Array;
  frames: FrameSelection;
  preprocess: PreprocessSpec;
  method?: CalibrationMethod;
  outputs?: string[];
  /** Skip preparation (equalization, rescaling, GPTQ): plain ranges of the model as given. */
  prepare?: boolean;
}

export interface TfliteCalibration {
  /** The prepared ONNX model: what the INT8 export converts. */
  onnxBytes: Uint8Array;
  /** The prepared model before GPTQ (exactly the original function): weights for the ops that stay float. */
  unroundedBytes?: Uint8Array;
  ranges: Map<string, Range>;
  frames: number;
  prepared?: PrepareReport;
}

export async function tfliteRanges(o: TfliteRangeOptions): Promise<TfliteCalibration> {
  let model = decodeModel(Uint8Array.from(o.onnxBytes));
  const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!.name;
  let onnxBytes = o.onnxBytes;
  let prepared: PrepareReport | undefined;
  let unroundedBytes: Uint8Array | undefined;
  if (o.prepare !== false) {
    // Weights held in Constant nodes become initializers, where preparation looks for them.
    constantsToInitializers(model.graph);
    const p = await prepareForInt8(model, { inputName: input, frames: o.frames, preprocess: o.preprocess });
    model = p.model;
    prepared = p.report;
    onnxBytes = encodeModel(model);
    unroundedBytes = encodeModel(p.unrounded);
  }
  const wanted = tfliteCalibrationTensors(onnxBytes, o.outputs, { [input]: fedInputShape(o.preprocess) });
  const tensors = wanted.filter((t) => t !== input);
  // The graph input is not a node output, so its range is tracked on the frames as they pass.
  const inputRange = { min: Infinity, max: -Infinity };
  async function* tracked(): AsyncGenerator<ModelInput> {
    for await (const f of modelInputs(o.frames, o.preprocess)) {
      for (const v of f.data) { if (v < inputRange.min) inputRange.min = v; if (v > inputRange.max) inputRange.max = v; }
      yield f;
    }
  }
  const cal = await calibrate({ model, inputName: input, tensors, frames: tracked(), bins: 2048 });
  const ranges = new Map<string, Range>();
  for (const [name, h] of cal.histograms) ranges.set(name, rangeFromHistogram(h, { method: o.method ?? 'minmax', asymmetric: true }));
  ranges.set(input, inputRange);
  return { onnxBytes, unroundedBytes, ranges, frames: cal.frames, prepared };
}

/**
 * Mixed precision for the INT8 TFLite export: the same sensitivity search as `fleetctl model quantize
 * --target-snr` (sensitivity.ts), run on the prepared ONNX model with every activation planned as the
 * TFLite export rounds it (int8, elementwise ops included), on two of the calibration frames. Returns
 * the ONNX activation names to keep float.
 */
export async function tfliteKeepFloat(preparedBytes: Uint8Array, frames: FrameSelection, preprocess: PreprocessSpec, targetSnrDb: number): Promise<string[]> {
  const model = decodeModel(Uint8Array.from(preparedBytes));
  const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!.name;
  // Folds only where the export fuses the ReLU into its producer (fuse.ts), so the search rounds what the export rounds.
  const plan = { target: 'cpu' as const, ops: 'all' as const, activationType: 'int8' as const, foldInto: TFLITE_ACTIVATION_FUSES };
  const cal = await calibrate({ model, inputName: input, tensors: planQuantization(model, plan).activations, frames: modelInputs(frames, preprocess), bins: 2048 });
  const ranges = new Map([...cal.histograms].map(([t, h]) => [t, rangeFromHistogram(h, { method: 'minmax', asymmetric: true })]));
  return chooseFloatActivations({ model, inputName: input, ranges, plan, frames, preprocess, targetSnrDb });
}
