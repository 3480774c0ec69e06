/**
 * Quantization arithmetic (ONNX QuantizeLinear/DequantizeLinear semantics, onnx/docs/Operators.md):
 * q = saturate(round_half_even(x / scale) + zeroPoint), x' = (q - zeroPoint) * scale.
 * Activations: int8, asymmetric (CPU) or symmetric (TensorRT, which only takes zero point 0).
 * Weights: int8, symmetric, one scale per output channel. Bias: int32 with scale = sIn * sW[c], zp 0,
 * so the integer accumulator of a QLinearConv can add it directly (computed by onnxruntime at load from
 * the float bias the build stores: quantizeBias).
 */
import { DataType, type OnnxTensor } from '../convert/onnx/model.js';
import type { TensorRange } from './ranges.js';

export interface QParams {
  scale: number;
  zeroPoint: number;
}

export const INT8_MIN = -128;
export const INT8_MAX = 127;
/**
 * The 7-bit weight range, ±63, of the weighted ops whose pairs weightGridFor cannot bound (MatMul,
 * Gemm, Convs with an odd channel count). On x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) MLAS's
 * U8S8 GEMM multiplies with VPMADDUBSW, which adds two uint8×int8 products into an int16 and
 * saturates: 2·255·127 does not fit, 2·255·63 = 32130 does. onnxruntime's quantization guide names
 * this and its fix (reduce_range: 7-bit weights). Measured on an AMD EPYC with AVX2 only: at ±127 a
 * 3-channel test Conv was off float by 0.46 (its test allows 0.05, which ±63 meets) and a BlazeFace
 * INT8 build lost 16.7 F1 points against FP32 (test/integration/quantize-cli.test.ts); the same builds
 * pass on AVX-512 VNNI. Depthwise Convs run in another kernel (MLAS's depthwise QLinearConv, not the
 * GEMM) and keep ±127: so built, the CenterNet heatmap kept on this AVX2 machine the 19 dB it has on a
 * VNNI one.
 */
export const INT8_REDUCED_MAX = 63;

/**
 * The largest same-sign sum of the two int8 weights that one VPMADDUBSW step multiplies with two uint8
 * activations: 255 · 128 = 32640 fits the int16 it adds them into (≤ 32767, and ≥ −32768 for negative
 * pairs); 255 · 129 does not.
 */
export const INT8_PAIR_MAX = 128;

/**
 * The per-output-channel int8 grid of one weighted op: |q| ≤ qmax, and where `pairs` is set, every
 * pair of weights that MLAS's U8S8 kernels may sum in one VPMADDUBSW step has a same-sign sum of at
 * most INT8_PAIR_MAX, so no uint8 input can saturate it.
 */
export interface WeightGrid {
  qmax: number;
  /** Index pairs within one output channel's `row` weights (ONNX order), flat: a0, b0, a1, b1, … (a < b). */
  pairs?: Int32Array;
  row?: number;
  /** Scales rounded up to binary16 values (halfUp), so a build can store them as halves. */
  half?: boolean;
}

/**
 * Which grid a weighted op's weights are stored on.
 *
 * `full`: ±127 everywhere. `reduced` (a CPU build's default): depthwise Convs (weights [C, 1, kH, kW],
 * group = C) keep ±127, since MLAS runs them in its depthwise kernel, not the GEMM. Other Convs keep
 * ±127 too, but a channel's scale is chosen so that each pair of weights the kernels may add into
 * one int16 stays within INT8_PAIR_MAX: scale = max(max|w| / 127, P / 128), P the largest same-sign
 * sum of a pair. MLAS's QLinearConv runs on NHWC: its GEMM reads the weights as K = (kH, kW, C/group)
 * with the channel innermost, and its AVX2 U8S8 kernels take K in steps of four, multiplying k, k+1
 * into one int16 and k+2, k+3 into another; MlasConvSym instead pads each tap's channels to a
 * multiple of four. Both pairings are bounded: K positions (2j, 2j+1), and channels (2j, 2j+1) of one
 * tap; with an even channel count they are the same pairs. A 1×1 Conv read as a MatMul
 * (float-head-matmul.ts) has K = C, the same pairs. Convs reading an odd channel count, MatMul and
 * Gemm keep the 7-bit grid, ±63, for which no pair can saturate (2 · 255 · 63 = 32130).
 *
 * On the CenterNet's dense Convs the pair limit leaves a channel's largest weight at a median of
 * about ±105–120 steps instead of ±63 (measured on the FP32 weights), about 0.8 bit more.
 *
 * With `half`, the scales are binary16 values: an ONNX CPU build stores them as halves (qdq.ts), and
 * GPTQ (gptq.ts, told so by the build: halfScales) rounds onto that very grid. Without it (TensorRT,
 * the TFLite export) the scales are plain float32, as the file stores them.
 */
export function weightGridFor(opType: string, weightDims: readonly number[], group: number, range: WeightRange, half = false): WeightGrid {
  const grid = gridShape(opType, weightDims, group, range);
  return half ? { ...grid, half } : grid;
}

function gridShape(opType: string, weightDims: readonly number[], group: number, range: WeightRange): WeightGrid {
  if (range === 'full') return { qmax: INT8_MAX };
  if (opType !== 'Conv') return { qmax: INT8_REDUCED_MAX };
  const depthwise = group > 1 && weightDims[1] === 1 && weightDims[0] === group;
  if (depthwise) return { qmax: INT8_MAX };
  const channels = weightDims[1];
  // An odd channel count (a stem reading RGB): its K pairs straddle taps. Bounding them and each tap's
  // (c0, c1) as well held BlazeFace's stem clear of saturation (bit-identical to the exact U8U8 run)
  // but measured worse than ±63 (agreement 80.4 against 86.6 on its 6 face photos), so such Convs
  // keep the 7-bit grid.
  if (channels % 2 !== 0) return { qmax: INT8_REDUCED_MAX };
  const taps = weightDims.slice(2).reduce((a, b) => a * b, 1);
  const row = channels * taps;
  // ONNX order within a row: index = c · taps + t; the kernels' K order: k = t · channels + c. With an
  // even channel count the K pairs are channels (2j, 2j+1) of one tap, MlasConvSym's pairs as well.
  const onnx = (k: number) => (k % channels) * taps + Math.floor(k / channels);
  const list: number[] = [];
  for (let k = 0; k + 1 < row; k += 2) list.push(onnx(k), onnx(k + 1));
  return { qmax: INT8_MAX, pairs: Int32Array.from(list), row };
}

/**
 * The pair with the largest same-sign sum in w[from, to), whole rows of the grid: its sum and its two
 * indices (sum 0, indices -1 without pairs). An opposite-sign pair counts its larger value alone.
 */
export function largestPair(w: ArrayLike<number>, from: number, to: number, grid: WeightGrid): { sum: number; a: number; b: number } {
  const out = { sum: 0, a: -1, b: -1 };
  const { pairs, row } = grid;
  if (!pairs || !row) return out;
  for (let base = from; base < to; base += row) {
    for (let j = 0; j < pairs.length; j += 2) {
      const a = base + pairs[j], b = base + pairs[j + 1];
      const sum = Math.max(Math.max(w[a], 0) + Math.max(w[b], 0), Math.max(-w[a], 0) + Math.max(-w[b], 0));
      if (sum > out.sum) { out.sum = sum; out.a = a; out.b = b; }
    }
  }
  return out;
}

/** The largest same-sign sum of paired weights in w[from, to), whole rows of the grid (0 without pairs). */
export function pairPeak(w: ArrayLike<number>, from: number, to: number, grid: WeightGrid): number {
  return largestPair(w, from, to, grid).sum;
}

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

/** `x` rounded to the nearest binary16 value (as a number). */
export function toHalf(x: number): number {
  return halfBitsToFloat(toHalfBits(x));
}

/** A binary16 initializer holding `values` (each rounded to nearest even). */
export function halfTensor(dims: number[], values: ArrayLike<number>): OnnxTensor {
  const h = Uint16Array.from(values as ArrayLike<number>, (v) => toHalfBits(v));
  return { dims, dataType: DataType.FLOAT16, data: new Uint8Array(h.buffer) };
}

/** The smallest positive normal binary16 value (2^-14) and the largest finite one. */
export const HALF_MIN_NORMAL = 2 ** -14;
export const HALF_MAX = 65504;

/**
 * A weight scale as binary16 can hold it: the nearest half at or above `s` (a value within 2^-16 of a
 * half below counts as that half: float32 noise of a scale already on it). A CPU build stores its weight
 * scales as halves (qdq.ts); rounding the scale up before the weights are rounded keeps them exact:
 * the grid widens by at most 2^-10 and the largest weight still lands on ±qmax. Outside the normal
 * half range `s` is returned as it is, and its tensor keeps float32 scales.
 */
export function halfUp(s: number): number {
  if (!(s >= HALF_MIN_NORMAL && s <= HALF_MAX)) return s;
  const bits = toHalfBits(s);
  const h = halfBitsToFloat(bits);
  return h >= s * (1 - 2 ** -16) ? h : halfBitsToFloat(bits + 1);
}

/** True when every value is a normal binary16 value (what halfUp returns in range). */
export function allHalfExact(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(Math.abs(v) >= HALF_MIN_NORMAL && Math.abs(v) <= HALF_MAX) || toHalf(v) !== v) return false;
  }
  return true;
}

/**
 * A channel's scale on its grid: the largest weight at ±qmax, or the largest pair sum at INT8_PAIR_MAX if
 * that binds; on a `half` grid rounded up to a binary16 value.
 */
export function gridScale(amax: number, pairSum: number, grid: WeightGrid): number {
  const s = Math.max(amax / grid.qmax, grid.pairs ? pairSum / INT8_PAIR_MAX : 0);
  return grid.half ? halfUp(s) : s;
}

/** For each index of a row, the indices it is paired with. */
export function partnersOf(grid: WeightGrid): number[][] {
  const out = Array.from({ length: grid.row ?? 0 }, () => [] as number[]);
  const pairs = grid.pairs ?? new Int32Array(0);
  for (let j = 0; j < pairs.length; j += 2) { out[pairs[j]].push(pairs[j + 1]); out[pairs[j + 1]].push(pairs[j]); }
  return out;
}

/**
 * Brings q[k] (rounded from x[k] / scale) within its pair's limit, given its partner's integer `other`:
 * the magnitude shrinks until the same-sign sum is at most INT8_PAIR_MAX.
 */
export function clampToPair(q: number, other: number): number {
  if (q > 0 && other > 0 && q + other > INT8_PAIR_MAX) return INT8_PAIR_MAX - other;
  if (q < 0 && other < 0 && -q - other > INT8_PAIR_MAX) return -INT8_PAIR_MAX - other;
  return q;
}

/** `reduced`: a grid no uint8 input can saturate on x86 CPUs without VNNI (weightGridFor); `full`: ±127 everywhere. */
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
 * Steps back, for each pair of the grid in data[from, to) whose same-sign sum is past INT8_PAIR_MAX,
 * the one of the two that rounding (from w / scale) took up more. With the grid's scale the exact sums
 * are within the limit, and rounding half to even cannot take two values whose sum is at most 128
 * past it; this guards against the float error of w / scale and a scale read back from stored
 * weights. One step per pair is enough, and a step only lowers the sums of the value's other pairs.
 */
export function holdPairs(data: Int8Array, w: ArrayLike<number>, scale: number, grid: WeightGrid, from: number, to: number): void {
  const { pairs, row } = grid;
  if (!pairs || !row) return;
  for (let base = from; base < to; base += row) {
    for (let j = 0; j < pairs.length; j += 2) {
      const a = base + pairs[j], b = base + pairs[j + 1];
      if (clampToPair(data[a], data[b]) === data[a]) continue;
      const upA = Math.abs(data[a]) - Math.abs(w[a] / scale), upB = Math.abs(data[b]) - Math.abs(w[b] / scale);
      if (upA >= upB) data[a] -= Math.sign(data[a]); else data[b] -= Math.sign(data[b]);
    }
  }
}

/**
 * Symmetric int8 per-channel quantization along axis 0 (Conv weights [O, I/g, kH, kW]; for Gemm/MatMul
 * pass the transposed layout's channel count). Values use ±qmax (127, or INT8_REDUCED_MAX), never -128,
 * so negation is exact; on a grid with pairs (weightGridFor) each channel's scale also holds its
 * largest pair sum at INT8_PAIR_MAX (holdPairs checks the rounded pairs).
 * `minScales` raises a channel's scale where its int32 bias would not fit otherwise (biasScaleFloor).
 */
export function quantizePerChannel(w: Float32Array, channels: number, minScales?: ArrayLike<number>, grid: number | WeightGrid = INT8_MAX): PerChannelWeights {
  if (channels <= 0 || w.length % channels !== 0) throw new RangeError(`Expected ${w.length} weights to split into ${channels} equal channels`);
  const g: WeightGrid = typeof grid === 'number' ? { qmax: grid } : grid;
  const qmax = g.qmax;
  const per = w.length / channels;
  if (g.pairs && g.row && per % g.row !== 0) throw new RangeError(`Expected a channel's ${per} weights to be whole rows of ${g.row}`);
  const data = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const from = c * per, to = from + per;
    let m = 0;
    for (let k = from; k < to; k++) m = Math.max(m, Math.abs(w[k]));
    const floor = minScales?.[c] ?? 0;
    // gridScale is on the grid's halves already; a floor that binds is rounded up onto them too.
    const s = m > 0 || floor > 0 ? Math.max(gridScale(m, pairPeak(w, from, to, g), g), g.half ? halfUp(floor) : floor) : 1;
    scales[c] = s;
    for (let k = from; k < to; k++) data[k] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[k] / s)));
    holdPairs(data, w, s, g, from, to);
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

/**
 * The int32 bias onnxruntime derives at load from a Conv/Gemm's float bias (WeightBiasQuantization,
 * onnxruntime/core/optimizer/qdq_transformer/weight_bias_quantization.cc): scale[c] = inputScale ·
 * weightScale[c] in float32, zero point 0. The default build stores the float bias and leaves this to
 * onnxruntime; a `bias: 'int32'` build stores these integers and scales (qdq.ts). biasScaleFloor keeps
 * them within int32.
 */
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
