/**
 * FP16 variant: every float initializer with at least `minElements` values is stored as IEEE half
 * and read through a Cast back to float, so the file halves while the graph still runs on ORT's CPU
 * kernels (which have few fp16 implementations; ORT folds the Casts at load). A GPU runtime that
 * computes in fp16 (TensorRT with fp16 enabled) reads the same weights without loss.
 */
import { DataType, tensorToFloat32, type OnnxModel } from '../convert/onnx/model.js';
import { cloneModel, topoSort } from './qdq.js';

/** float32 → IEEE 754 binary16 bits, round to nearest even, with subnormals, ±Inf and NaN. */
export function toHalfBits(x: number): number {
  const f = new Float32Array(1); const u = new Uint32Array(f.buffer);
  f[0] = x;
  const bits = u[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  if ((half & 0x7fff) >= 0x7c00) return sign | 0x7c00;
  return sign | half;
}

export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function convertToFp16(source: OnnxModel, minElements = 16): { model: OnnxModel; converted: number } {
  const model = cloneModel(source);
  const g = model.graph;
  let converted = 0;
  const casts = [];
  for (const [name, t] of [...g.initializers]) {
    if (t.dataType !== DataType.FLOAT) continue;
    const f = tensorToFloat32(t);
    if (f.length < minElements) continue;
    const h = new Uint16Array(f.length);
    for (let i = 0; i < f.length; i++) h[i] = toHalfBits(f[i]);
    g.initializers.delete(name);
    g.initializers.set(`${name}__fp16`, { dims: t.dims, dataType: DataType.FLOAT16, data: new Uint8Array(h.buffer) });
    casts.push({ opType: 'Cast', name: `${name}__cast`, inputs: [`${name}__fp16`], outputs: [name], attributes: [{ name: 'to', type: 'int' as const, value: DataType.FLOAT }] });
    converted++;
  }
  g.nodes = topoSort([...casts, ...g.nodes], new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]));
  return { model, converted };
}
