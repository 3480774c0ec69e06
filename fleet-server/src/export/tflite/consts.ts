/**
 * Constant values during ONNX → TFLite conversion: initializers and the small shape subgraphs
 * (Shape → Cast → Concat → Resize sizes, ConstantOfShape) that fold away at export time, since the
 * exported graph has static shapes.
 */
import { DataType, tensorToFloat32, tensorToInts, type OnnxTensor } from '../../convert/onnx/model.js';

export interface ConstValue {
  dims: number[];
  /** Element values as JS numbers (float or integer). */
  values: Float64Array;
  isFloat: boolean;
}

export function fromOnnx(t: OnnxTensor): ConstValue {
  if (t.dataType === DataType.FLOAT) return { dims: [...t.dims], values: Float64Array.from(tensorToFloat32(t)), isFloat: true };
  if (t.dataType === DataType.INT32 || t.dataType === DataType.INT64) return { dims: [...t.dims], values: Float64Array.from(tensorToInts(t)), isFloat: false };
  if (t.dataType === DataType.BOOL || t.dataType === DataType.UINT8) return { dims: [...t.dims], values: Float64Array.from(t.data), isFloat: false };
  throw new TypeError(`constant of ONNX data type ${t.dataType} is not supported by the TFLite exporter`);
}

export function count(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Strides of a row-major shape. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Transposes a constant: out.dims[i] = in.dims[perm[i]]. */
export function transposeConst(c: ConstValue, perm: readonly number[]): ConstValue {
  const outDims = perm.map((p) => c.dims[p]);
  const inStr = strides(c.dims);
  const outStr = strides(outDims);
  const n = count(outDims);
  const out = new Float64Array(n);
  const rank = perm.length;
  for (let o = 0; o < n; o++) {
    let rem = o, src = 0;
    for (let i = 0; i < rank; i++) {
      const idx = Math.floor(rem / outStr[i]);
      rem -= idx * outStr[i];
      src += idx * inStr[perm[i]];
    }
    out[o] = c.values[src];
  }
  return { dims: outDims, values: out, isFloat: c.isFloat };
}

/** Broadcast shape per ONNX (numpy) rules. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new RangeError(`shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Elementwise op on two constants with broadcasting. */
export function binaryConst(a: ConstValue, b: ConstValue, f: (x: number, y: number) => number): ConstValue {
  const dims = broadcastShape(a.dims, b.dims);
  const n = count(dims);
  const out = new Float64Array(n);
  const os = strides(dims);
  const idx = (c: ConstValue, flat: number): number => {
    let rem = flat, src = 0;
    const off = dims.length - c.dims.length;
    const cs = strides(c.dims);
    for (let i = 0; i < dims.length; i++) {
      const k = Math.floor(rem / os[i]);
      rem -= k * os[i];
      if (i >= off && c.dims[i - off] !== 1) src += k * cs[i - off];
    }
    return src;
  };
  for (let i = 0; i < n; i++) out[i] = f(a.values[idx(a, i)], b.values[idx(b, i)]);
  return { dims, values: out, isFloat: a.isFloat || b.isFloat };
}

export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

export function i32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Int32Array.from(values).buffer);
}
