/**
 * Graph outputs whose shapes the source did not state (TF.js models without a signature, such as
 * @vladmandic/human's BlazeFace) get them from one onnxruntime run on zeros. ONNX's full checker
 * requires a shape on every graph output, and consumers (quantizer, exporters) rely on them.
 * Only for graphs whose inputs are all static: the shapes found hold for every run.
 */
import ort from 'onnxruntime-node';
import type { OnnxModel } from './model.js';
import { encodeModel } from './codec.js';

const ZERO_INPUT: Record<number, (n: number) => ort.Tensor['data']> = {
  1: (n) => new Float32Array(n),
  2: (n) => new Uint8Array(n),
  6: (n) => new Int32Array(n),
  7: (n) => new BigInt64Array(n),
};
const TYPE_NAME: Record<number, ort.Tensor.Type> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64' };

export async function fillOutputShapes(model: OnnxModel): Promise<OnnxModel> {
  const missing = model.graph.outputs.filter((o) => !o.shape);
  if (missing.length === 0) return model;
  const initializers = new Set(model.graph.initializers.keys());
  const inputs = model.graph.inputs.filter((i) => !initializers.has(i.name));
  if (!inputs.every((i) => i.shape?.every((d) => typeof d === 'number') && ZERO_INPUT[i.elemType])) return model;
  const session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of inputs) {
      const dims = i.shape as number[];
      feeds[i.name] = new ort.Tensor(TYPE_NAME[i.elemType], ZERO_INPUT[i.elemType](dims.reduce((a, b) => a * b, 1)) as Float32Array, dims);
    }
    const out = await session.run(feeds, missing.map((o) => o.name));
    for (const o of missing) o.shape = [...out[o.name].dims];
  } finally {
    await session.release();
  }
  return model;
}
