/**
 * Calibration ranges for the INT8 TFLite export, from the INT8 pipeline (fleet-server/src/quantize):
 * the ONNX model runs in onnxruntime with the needed tensors added as outputs, one histogram per
 * tensor, and a range per tensor by the chosen method.
 */
import { decodeModel } from '../../convert/onnx/codec.js';
import { calibrate } from '../../quantize/calibrate.js';
import { rangeFromHistogram, type CalibrationMethod } from '../../quantize/ranges.js';
import type { ModelInput } from '../../../../agent/src/preprocess/preprocess.js';
import { tfliteCalibrationTensors } from './export.js';
import type { Range } from './int8.js';

export interface TfliteRangeOptions {
  onnxBytes: Uint8Array;
  frames: AsyncIterable<ModelInput>;
  method?: CalibrationMethod;
  outputs?: string[];
}

export async function tfliteRanges(o: TfliteRangeOptions): Promise<{ ranges: Map<string, Range>; frames: number }> {
  const model = decodeModel(Uint8Array.from(o.onnxBytes));
  const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!.name;
  const wanted = tfliteCalibrationTensors(o.onnxBytes, o.outputs);
  const tensors = wanted.filter((t) => t !== input);
  // The graph input is not a node output, so its range is tracked on the frames as they pass.
  const inputRange = { min: Infinity, max: -Infinity };
  async function* tracked(): AsyncGenerator<ModelInput> {
    for await (const f of o.frames) {
      for (const v of f.data) { if (v < inputRange.min) inputRange.min = v; if (v > inputRange.max) inputRange.max = v; }
      yield f;
    }
  }
  const cal = await calibrate({ model, inputName: input, tensors, frames: tracked(), bins: 2048 });
  const ranges = new Map<string, Range>();
  for (const [name, h] of cal.histograms) ranges.set(name, rangeFromHistogram(h, { method: o.method ?? 'minmax', asymmetric: true }));
  ranges.set(input, inputRange);
  return { ranges, frames: cal.frames };
}
