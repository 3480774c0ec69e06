/**
 * Quantization arithmetic (ONNX QuantizeLinear/DequantizeLinear semantics, onnx/docs/Operators.md):
 * q = saturate(round_half_even(x / scale) + zeroPoint), x' = (q - zeroPoint) * scale.
 * Activations: int8, asymmetric (CPU) or symmetric (TensorRT, which only takes zero point 0).
 * Weights: int8, symmetric, one scale per output channel. Bias: int32 with scale = sIn * sW[c], zp 0,
 * so the integer accumulator of a QLinearConv can add it directly.
 */
import type { TensorRange } from './ranges.js';

export interface QParams {
  scale: number;
  zeroPoint: number;
}

export const INT8_MIN = -128;
export const INT8_MAX = 127;
/**
 * The weight range a CPU build stores for the Convs (and MatMul/Gemm) that onnxruntime runs as an
 * integer GEMM: 7 bits, ±63. On x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) MLAS's U8S8 GEMM
 * multiplies with VPMADDUBSW, which adds two uint8×int8 products into an int16 and saturates: 2·255·127
 * does not fit, 2·255·63 = 32130 does. onnxruntime's quantization guide names this and its fix
 * (reduce_range: 7-bit weights). Measured on an AMD EPYC with AVX2 only: at ±127 a 3-channel test Conv
 * was off float by 0.46 (its test allows 0.05, which ±63 meets) and a BlazeFace INT8 build lost 16.7
 * F1 points against FP32 (test/integration/quantize-cli.test.ts); the same builds pass on AVX-512 VNNI.
 * Depthwise Convs run in another kernel (MLAS's depthwise QLinearConv, not the GEMM) and keep ±127:
 * so built, the CenterNet heatmap kept on this AVX2 machine the 19 dB it has on a VNNI one.
 */
export const INT8_REDUCED_MAX = 63;

/**
 * Which weight range a weighted op stores: `reduced` (a CPU build's default) gives ±63 to what
 * onnxruntime runs as an integer GEMM (dense or grouped Conv, MatMul, Gemm) and ±127 to depthwise
 * Convs (weights [C, 1, kH, kW] with group = C, its depthwise kernel); `full` gives ±127 to all.
 */
export function weightMaxFor(opType: string, weightDims: readonly number[], group: number, range: WeightRange): number {
  if (range === 'full') return INT8_MAX;
  const depthwise = opType === 'Conv' && group > 1 && weightDims[1] === 1 && weightDims[0] === group;
  return depthwise ? INT8_MAX : INT8_REDUCED_MAX;
}

/** `reduced`: 7-bit weights where x86 CPUs without VNNI would saturate (INT8_REDUCED_MAX); `full`: ±127 everywhere. */
export type WeightRange = 'reduced' | 'full';

/** Rounds half to even, as QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** uint8 activation parameters (ORT's default U8S8 format): q in 0..255, zero point in 0..255. */
export function activationParamsU8(range: TensorRange): QParams {
  const lo = Math.min(0, range.min), hi = Math.max(0, range.max);
  const span = hi - lo;
  if (!(span > 0)) return { scale: 1, zeroPoint: 0 };
  const scale = span / 255;
  return { scale, zeroPoint: Math.max(0, Math.min(255, roundHalfEven(-lo / scale))) };
}

/** Activation parameters from a calibrated range. The range is widened to include 0 so 0 is exact (padding, ReLU). */
export function activationParams(range: TensorRange, symmetric: boolean): QParams {
  const lo = Math.min(0, range.min), hi = Math.max(0, range.max);
  if (symmetric) {
    const a = Math.max(-lo, hi);
    return { scale: a > 0 ? a / INT8_MAX : 1, zeroPoint: 0 };
  }
  const span = hi - lo;
  if (!(span > 0)) return { scale: 1, zeroPoint: 0 };
  const scale = span / (INT8_MAX - INT8_MIN);
  const zeroPoint = Math.max(INT8_MIN, Math.min(INT8_MAX, roundHalfEven(INT8_MIN - lo / scale)));
  return { scale, zeroPoint };
}

export function quantizeValue(x: number, p: QParams): number {
  return Math.max(INT8_MIN, Math.min(INT8_MAX, roundHalfEven(x / p.scale) + p.zeroPoint));
}

export function dequantizeValue(q: number, p: QParams): number {
  return (q - p.zeroPoint) * p.scale;
}

export interface PerChannelWeights {
  data: Int8Array;
  scales: Float32Array;
}

/**
 * Symmetric int8 per-channel quantization along axis 0 (Conv weights [O, I/g, kH, kW]; for Gemm/MatMul
 * pass the transposed layout's channel count). Values use ±qmax (127, or INT8_REDUCED_MAX), never -128,
 * so negation is exact.
 * `minScales` raises a channel's scale where its int32 bias would not fit otherwise (biasScaleFloor).
 */
export function quantizePerChannel(w: Float32Array, channels: number, minScales?: ArrayLike<number>, qmax: number = INT8_MAX): PerChannelWeights {
  if (channels <= 0 || w.length % channels !== 0) throw new RangeError(`Expected ${w.length} weights to split into ${channels} equal channels`);
  const per = w.length / channels;
  const data = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let k = c * per; k < (c + 1) * per; k++) m = Math.max(m, Math.abs(w[k]));
    const floor = minScales?.[c] ?? 0;
    const s = m > 0 || floor > 0 ? Math.max(m / qmax, floor) : 1;
    scales[c] = s;
    for (let k = c * per; k < (c + 1) * per; k++) data[k] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[k] / s)));
  }
  return { data, scales };
}

/**
 * The smallest weight scale per channel at which the bias still fits int32 with room to spare
 * (|b| / (inputScale · weightScale) ≤ 2^30). Without it the bias saturates: in the CenterNet one
 * squeeze-excite Conv reads a tensor whose range is 0.007 (scale 2.8e-5) and adds biases near 1.5
 * through weights of the same tiny size, and 71 of its 72 int32 biases were clamped at 2^31 − 1, which
 * took that block's output to 4.5 dB SNR.
 */
export function biasScaleFloor(b: Float32Array, inputScale: number): Float64Array {
  return Float64Array.from(b, (v) => Math.abs(v) / (inputScale * 2 ** 30));
}

/** int32 bias for Conv/Gemm: scale[c] = inputScale * weightScale[c], zero point 0. */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { data: Int32Array; scales: Float32Array } {
  const data = new Int32Array(b.length);
  const scales = new Float32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const ws = weightScales.length === 1 ? weightScales[0] : weightScales[c];
    const s = Math.fround(Math.fround(inputScale) * ws);
    scales[c] = s > 0 ? s : 1;
    data[c] = Math.max(-2147483648, Math.min(2147483647, roundHalfEven(b[c] / scales[c])));
  }
  return { data, scales };
}
