/**
 * FP16 variant: every float initializer with at least `minElements` values is stored as IEEE half
 * and read through a Cast back to float, so the file halves while the graph still runs on ORT's CPU
 * kernels (which have few fp16 implementations; ORT folds the Casts at load). A GPU runtime that
 * computes in fp16 (TensorRT with fp16 enabled) reads the same weights without loss.
 */
import { DataType, tensorToFloat32, type OnnxModel } from '../convert/onnx/model.js';
import { cloneModel, halfConstant, topoSort } from './qdq.js';

export { halfBitsToFloat, toHalfBits } from './qmath.js';

export function convertToFp16(source: OnnxModel, minElements = 16): { model: OnnxModel; converted: number } {
  const model = cloneModel(source);
  const g = model.graph;
  let converted = 0;
  const casts = [];
  for (const [name, t] of [...g.initializers]) {
    if (t.dataType !== DataType.FLOAT) continue;
    const f = tensorToFloat32(t);
    if (f.length < minElements) continue;
    g.initializers.delete(name);
    casts.push({ ...halfConstant(g, `${name}__fp16`, name, t.dims, f), name: `${name}__cast` });
    converted++;
  }
  g.nodes = topoSort([...casts, ...g.nodes], new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]));
  return { model, converted };
}
