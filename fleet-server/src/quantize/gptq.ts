/**
 * Weight rounding that minds the data (GPTQ: Frantar et al., "GPTQ: Accurate Post-Training
 * Quantization for Generative Pre-trained Transformers", ICLR 2023, Algorithm 1, itself the Optimal
 * Brain Quantizer of Frantar & Alistarh, 2022). Rounding each weight to its nearest int8 step is what
 * costs the CenterNet most: with activations left in float, per-channel int8 weights alone took the
 * heatmap to 9–11 dB SNR (measured on vtest.avi). BatchNorm folding left depthwise and 1×1 filters
 * whose large weights nearly cancel on real, smooth inputs, so independent rounding errors, each
 * 1/254 of the largest weight, add up to a large share of the small output.
 *
 * For a Conv's output row w (its weights over one input patch, length d) and the second moment of its
 * real input patches H = Σ x·xᵀ, the output error of a rounding δ is δᵀHδ. GPTQ rounds the weights
 * one at a time and moves the not-yet-rounded ones to cancel the error just made, using the Cholesky
 * factor of H⁻¹. The scale stays the plain per-channel symmetric one of the grid qmath.weightGridFor
 * gives (max|w|/qmax, or the largest pair sum over INT8_PAIR_MAX where that binds), and the weights that
 * set it are placed exactly on it and left alone (the largest at ±qmax, or the pair at a sum of
 * INT8_PAIR_MAX), so the INT8 builders (qdq.ts, the TFLite exporter) compute the same scale from the
 * result and store these exact integers.
 *
 * H comes from the float model on calibration frames: every Conv's input is added as an extra output,
 * and up to `maxPositions` output positions per frame contribute their input patch (im2col), so memory
 * is d² per Conv (per channel for depthwise), never the activations.
 */
import ort from 'onnxruntime-node';
import { encodeModel } from '../convert/onnx/codec.js';
import { DataType, convPadding, floatTensor, int64Tensor, intAttr, intsAttr, tensorToFloat32, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { withExtraOutputs } from './calibrate.js';
import { analyzeGraph, nodeKey } from './graph-info.js';
import { cloneModel } from './qdq.js';
import { clampToPair, gridScale, INT8_PAIR_MAX, largestPair, partnersOf, weightGridFor, type WeightGrid, type WeightRange } from './qmath.js';
import type { ModelInput } from '../../../agent/src/preprocess/preprocess.js';
import { ModelError } from '../../../agent/src/util/errors.js';

interface ConvGeometry {
  node: OnnxNode;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  groups: number;
  /** Patch length per group. */
  d: number;
}

interface ConvMoments extends ConvGeometry {
  /** One d×d second-moment matrix per group (1 for a dense Conv, C for a depthwise one). */
  H: Float64Array[];
  samples: number;
}

function geometry(model: OnnxModel, n: OnnxNode): ConvGeometry | undefined {
  const w = model.graph.initializers.get(n.inputs[1]);
  if (n.opType !== 'Conv' || w?.dataType !== DataType.FLOAT || w.dims.length !== 4) return undefined;
  const groups = intAttr(n, 'group', 1);
  const [cout, cinPerGroup, kh, kw] = w.dims;
  // Dense or depthwise only: those are the two the INT8 builders quantize per output channel.
  if (groups !== 1 && !(cinPerGroup === 1 && groups === cout)) return undefined;
  const [sh, sw] = intsAttr(n, 'strides') ?? [1, 1];
  const [dh, dw] = intsAttr(n, 'dilations') ?? [1, 1];
  return { node: n, cin: cinPerGroup * groups, cout, kh, kw, sh, sw, dh, dw, groups, d: cinPerGroup * kh * kw };
}

/**
 * Σ x·xᵀ of patch matrices, im2col included, through onnxruntime. Inputs: x [c, l] (c input channels
 * of l values each), at [k] (for each tap and sampled position, where it reads in a channel; l reads
 * the zero appended to every channel, which stands for the padding), tpc = [taps, p, c] and
 * shape [groups, d, p]. The gathered patches v [groups, d, p] are cast to float64 and multiplied by
 * their transpose in MLAS's DGEMM: output g [groups, d, d].
 *
 * The gathering was JavaScript before, and the costliest step of `fleetctl model quantize`: the
 * CenterNet's depthwise Convs alone need ~59 M patch values a frame. In onnxruntime (Transpose to
 * positions first, so each index copies a row) the same build of the CenterNet on 32 frames took
 * 1 min 57 s instead of 3 min 27 s (AVX2 EPYC), and wrote the same bytes: the values, and so H, are
 * the same bits (a cast, no arithmetic).
 *
 * The product is float64 on purpose. A float32 one (SGEMM, 2× faster again) was tried: its sums are
 * off by ~1e-8, and GPTQ's rounding, one weight after another, turns any change of H, even DGEMM's
 * other summation order, into another set of roundings of about the same quality (a 16-frame TFLite
 * agreement test read 0.94 after the JS loop, 0.92 after DGEMM, 0.88 after SGEMM, on one rare-class
 * box; on 32 frames 0.95 either way). Float64 stays closest to the old sums.
 */
function gramModel(): Uint8Array {
  const node = (opType: string, inputs: string[], output: string, attributes: OnnxNode['attributes'] = []): OnnxNode => ({ opType, name: output, inputs, outputs: [output], attributes });
  return encodeModel({
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, producerName: 'edge-fleet-gptq',
    graph: {
      name: 'gram', valueInfo: [],
      initializers: new Map([['pads', int64Tensor([4], [0, 0, 1, 0])]]),
      inputs: [
        { name: 'x', elemType: DataType.FLOAT, shape: ['c', 'l'] },
        { name: 'at', elemType: DataType.INT64, shape: ['k'] },
        { name: 'tpc', elemType: DataType.INT64, shape: [3] },
        { name: 'shape', elemType: DataType.INT64, shape: [3] },
      ],
      outputs: [{ name: 'g', elemType: DataType.DOUBLE, shape: ['groups', 'd', 'd'] }],
      nodes: [
        // Positions first, so that each gathered index copies one row of c values.
        node('Transpose', ['x'], 'xt', [{ name: 'perm', type: 'ints', value: [1, 0] }]),
        node('Pad', ['xt', 'pads'], 'xp'),
        node('Gather', ['xp', 'at'], 'rows', [{ name: 'axis', type: 'int', value: 0 }]),
        node('Reshape', ['rows', 'tpc'], 'tpc3'),
        node('Transpose', ['tpc3'], 'ctp', [{ name: 'perm', type: 'ints', value: [2, 0, 1] }]),
        node('Reshape', ['ctp', 'shape'], 'v32'),
        node('Cast', ['v32'], 'v', [{ name: 'to', type: 'int', value: DataType.DOUBLE }]),
        node('Transpose', ['v'], 'vt', [{ name: 'perm', type: 'ints', value: [0, 2, 1] }]),
        node('MatMul', ['v', 'vt'], 'g'),
      ],
    },
  } as OnnxModel);
}

/** One run of `gram` takes as many groups (depthwise channels) as fit in this many values (64 MB), and at least one. */
const GRAM_MAX_VALUES = 8 * 1024 * 1024;

/** Adds Σ x·xᵀ (upper triangle) over the sampled input patches of one frame. */
async function accumulate(m: ConvMoments, gram: ort.InferenceSession, x: Float32Array, dims: readonly number[], frame: number, maxPositions: number): Promise<void> {
  const [, C, inH, inW] = dims;
  if (C !== m.cin) throw new ModelError(`Conv ${nodeKey(m.node)} reads ${C} channels but its weights expect ${m.cin}`);
  const { before: [top, left], outHW: [outH, outW] } = convPadding(m.node, [inH, inW], [m.kh, m.kw], [m.sh, m.sw], [m.dh, m.dw]);
  const positions = outH * outW;
  const step = Math.max(1, Math.floor(positions / maxPositions));
  const sampled: number[] = [];
  for (let p = frame % step; p < positions; p += step) sampled.push(p);
  const P = sampled.length, d = m.d;
  if (P === 0) return;
  const perGroupCin = m.cin / m.groups;
  const plane = inH * inW;
  // For each tap (ky, kx) and sampled position q: where it reads in one input channel, or `plane` (the
  // zero the gram model appends) in the padding. A patch lists its channels, then ky, then kx.
  const taps = m.kh * m.kw;
  const at = new BigInt64Array(taps * P);
  for (let ky = 0, t = 0; ky < m.kh; ky++) {
    for (let kx = 0; kx < m.kw; kx++, t++) {
      for (let q = 0; q < P; q++) {
        const iy = Math.floor(sampled[q] / outW) * m.sh - top + ky * m.dh;
        const ix = (sampled[q] % outW) * m.sw - left + kx * m.dw;
        at[t * P + q] = BigInt(iy >= 0 && iy < inH && ix >= 0 && ix < inW ? iy * inW + ix : plane);
      }
    }
  }
  const atTensor = new ort.Tensor('int64', at, [taps * P]);
  const chunk = Math.max(1, Math.min(m.groups, Math.floor(GRAM_MAX_VALUES / (d * P))));
  for (let g0 = 0; g0 < m.groups; g0 += chunk) {
    const n = Math.min(chunk, m.groups - g0);
    const c = n * perGroupCin;
    const xs = x.slice(g0 * perGroupCin * plane, (g0 * perGroupCin + c) * plane);
    const out = await gram.run({
      x: new ort.Tensor('float32', xs, [c, plane]),
      at: atTensor,
      tpc: new ort.Tensor('int64', BigInt64Array.from([taps, P, c].map(BigInt)), [3]),
      shape: new ort.Tensor('int64', BigInt64Array.from([n, d, P].map(BigInt)), [3]),
    });
    const G = out.g.data as Float64Array;
    for (let g = 0; g < n; g++) {
      const H = m.H[g0 + g], off = g * d * d;
      for (let i = 0; i < d; i++) for (let j = i; j < d; j++) H[i * d + j] += G[off + i * d + j];
    }
    out.g.dispose();
  }
  m.samples += P;
}

export interface MomentOptions {
  model: OnnxModel;
  inputName: string;
  frames: AsyncIterable<ModelInput>;
  /** Node names (or first outputs) to leave alone. */
  exclude?: Set<string>;
  /** Output positions sampled per Conv and frame (default 1024). */
  maxPositions?: number;
}

/** Second moments of every eligible Conv's input patches on the given frames. */
export async function collectConvMoments(o: MomentOptions): Promise<ConvMoments[]> {
  const info = analyzeGraph(o.model.graph);
  const moments: ConvMoments[] = [];
  for (const n of o.model.graph.nodes) {
    if (o.exclude?.has(nodeKey(n))) continue;
    const geo = geometry(o.model, n);
    // The input must be an activation (not a graph initializer), and only float weights are rounded here.
    if (!geo || o.model.graph.initializers.has(n.inputs[0]) || info.elemType.get(n.inputs[0]) !== DataType.FLOAT) continue;
    moments.push({ ...geo, H: Array.from({ length: geo.groups }, () => new Float64Array(geo.d * geo.d)), samples: 0 });
  }
  if (moments.length === 0) return moments;
  const tensors = [...new Set(moments.map((m) => m.node.inputs[0]))].filter((t) => t !== o.inputName);
  const session = await ort.InferenceSession.create(encodeModel(withExtraOutputs(o.model, tensors)), { intraOpNumThreads: 1, graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
  let gram: ort.InferenceSession;
  try {
    gram = await ort.InferenceSession.create(gramModel(), { intraOpNumThreads: 1, logSeverityLevel: 3 });
  } catch (err) {
    await session.release();
    throw err;
  }
  let frame = 0;
  try {
    for await (const input of o.frames) {
      // Every Conv may read the graph input itself: onnxruntime refuses a run that fetches nothing.
      const out = tensors.length > 0 ? await session.run({ [o.inputName]: new ort.Tensor(input.dtype, input.data, input.dims) }, tensors) : {};
      for (const m of moments) {
        const name = m.node.inputs[0];
        const t = name === o.inputName ? { data: input.data as Float32Array, dims: input.dims } : { data: out[name].data as Float32Array, dims: out[name].dims };
        await accumulate(m, gram, t.data, t.dims, frame, o.maxPositions ?? 1024);
      }
      for (const t of tensors) out[t].dispose();
      frame++;
    }
  } finally {
    await session.release();
    await gram.release();
  }
  if (frame === 0) throw new ModelError('GPTQ saw no calibration frames');
  return moments;
}

/** Cholesky of a symmetric positive definite d×d matrix (upper triangle read): lower L, H = L·Lᵀ. */
function cholesky(H: Float64Array, d: number): Float64Array | undefined {
  const L = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = H[j * d + j];
    for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
    if (!(s > 0)) return undefined;
    const ljj = Math.sqrt(s);
    L[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = H[j * d + i]; // upper triangle holds H[j][i] = H[i][j]
      for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = t / ljj;
    }
  }
  return L;
}

/**
 * The upper Cholesky factor U of H⁻¹ (H⁻¹ = Uᵀ·U) for the permuted, damped H, as GPTQ uses it; H is
 * given as its upper triangle in the original order, `order` lists original indices in processing order.
 * With J the index reversal and J·H·J = L·Lᵀ: H⁻¹ = J·L⁻ᵀ·L⁻¹·J = Uᵀ·U for U = J·L⁻¹·J, which is upper
 * triangular with a positive diagonal, so it is the factor (one Cholesky and one triangular inverse,
 * where inverting H and factoring the inverse again took twice the work).
 */
export function inverseCholeskyUpper(Hu: Float64Array, d: number, order: readonly number[], damp: number): Float64Array | undefined {
  let mean = 0;
  for (let i = 0; i < d; i++) mean += Hu[i * d + i];
  mean /= d;
  const lambda = damp * (mean > 0 ? mean : 1);
  // Q = J·P·J where P[a][b] = H[order[a]][order[b]] (+ λ on the diagonal); cholesky reads Q's upper triangle.
  const Q = new Float64Array(d * d);
  for (let r = 0; r < d; r++) {
    for (let c = r; c < d; c++) {
      const i = order[d - 1 - r], j = order[d - 1 - c];
      Q[r * d + c] = (i <= j ? Hu[i * d + j] : Hu[j * d + i]) + (r === c ? lambda : 0);
    }
  }
  const L = cholesky(Q, d);
  if (!L) return undefined;
  // M = L⁻¹ (lower), row by row: M[i][·] = (e_i − Σ_{k<i} L[i][k]·M[k][·]) / L[i][i], contiguous rows.
  const M = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const row = i * d;
    for (let k = 0; k < i; k++) {
      const t = L[row + k];
      if (t === 0) continue;
      const mk = k * d;
      for (let j = 0; j <= k; j++) M[row + j] -= t * M[mk + j];
    }
    const inv = 1 / L[row + i];
    for (let j = 0; j < i; j++) M[row + j] *= inv;
    M[row + i] = inv;
  }
  const U = new Float64Array(d * d);
  for (let a = 0; a < d; a++) for (let b = a; b < d; b++) U[a * d + b] = M[(d - 1 - a) * d + (d - 1 - b)];
  return U;
}

/**
 * GPTQ on one row of weights with a fixed scale. The weights at the `frozen` positions of `order`
 * (the row's largest weight, or the pair whose sum sets the scale) are already exact grid values whose
 * largest |q| is qmax, or whose pair sum is INT8_PAIR_MAX: they take no compensation, so the INT8
 * builders derive this same scale from the result. On a grid with pairs, a weight whose partner is
 * already rounded is held within the pair limit (clampToPair), and the error of that clamp is
 * compensated like a rounding error.
 */
function quantizeRow(w: Float64Array, order: number[], U: Float64Array, scale: number, frozen: readonly number[], qmax: number, partnersAt: readonly number[][]): void {
  const d = order.length;
  const x = Float64Array.from(order, (i) => w[i]);
  const isFrozen = new Uint8Array(d);
  const rounded = new Int32Array(d);
  const done = new Uint8Array(d);
  for (const a of frozen) { isFrozen[a] = 1; rounded[a] = Math.round(x[a] / scale); done[a] = 1; }
  for (let a = 0; a < d; a++) {
    let q = isFrozen[a] ? rounded[a] : Math.max(-qmax, Math.min(qmax, Math.round(x[a] / scale)));
    if (!isFrozen[a]) for (const p of partnersAt[a]) if (done[p]) q = clampToPair(q, rounded[p]);
    rounded[a] = q; done[a] = 1;
    const e = (x[a] - q * scale) / U[a * d + a];
    for (let b = a + 1; b < d; b++) if (isFrozen[b] === 0) x[b] -= e * U[a * d + b];
    x[a] = q * scale;
  }
  order.forEach((i, a) => { w[i] = x[a]; });
}

/**
 * The row's scale on its grid and the positions (in `order`) that define it, set to exact grid values:
 * the largest weight at ±qmax, or, where a pair's same-sign sum binds, that pair at a sum of
 * INT8_PAIR_MAX (each of the two within half a step of its value).
 */
function rowScale(w: Float64Array, grid: WeightGrid, position: (i: number) => number): { scale: number; frozen: number[] } | undefined {
  let amax = 0, arg = 0;
  for (let i = 0; i < w.length; i++) if (Math.abs(w[i]) > amax) { amax = Math.abs(w[i]); arg = i; }
  if (amax === 0) return undefined;
  // Where the pair sum binds (sum/128 > amax/127) its two weights share a sign: a lone value never binds.
  const { sum: pairSum, a: pa, b: pb } = largestPair(w, 0, w.length, grid);
  const scale = gridScale(amax, pairSum, grid);
  if (pa < 0 || amax / grid.qmax >= pairSum / INT8_PAIR_MAX) {
    w[arg] = Math.sign(w[arg]) * grid.qmax * scale;
    return { scale, frozen: [position(arg)] };
  }
  const sign = Math.sign(w[pa]);
  const qa = Math.min(grid.qmax, Math.max(INT8_PAIR_MAX - grid.qmax, Math.round(Math.abs(w[pa]) / scale)));
  w[pa] = sign * qa * scale;
  w[pb] = sign * (INT8_PAIR_MAX - qa) * scale;
  return { scale, frozen: [position(pa), position(pb)] };
}

export interface GptqReport {
  convs: number;
  /** Convs left to plain rounding because their H was singular even after damping. */
  skipped: number;
}

/**
 * Returns a copy of the model whose Conv weights are already on their per-channel int8 grid, rounded
 * by GPTQ against the collected input moments.
 */
export function applyGptq(source: OnnxModel, moments: ConvMoments[], opts: { damp?: number; weightRange?: WeightRange; halfScales?: boolean } = {}): { model: OnnxModel; report: GptqReport } {
  const model = cloneModel(source);
  const g = model.graph;
  const report: GptqReport = { convs: 0, skipped: 0 };
  for (const m of moments) {
    const wt = g.initializers.get(m.node.inputs[1]);
    if (!wt || m.samples === 0) continue;
    const W = tensorToFloat32(wt);
    const rowsPerGroup = m.cout / m.groups;
    // The grid the INT8 builder will store this Conv on (qdq.ts asks the same function).
    const grid = weightGridFor('Conv', wt.dims, m.groups, opts.weightRange ?? 'full', opts.halfScales);
    if (grid.row !== undefined && grid.row !== m.d) throw new Error(`GPTQ: ${m.node.name}'s rows hold ${m.d} weights, its grid ${grid.row}`);
    const partners = partnersOf(grid);
    let ok = true;
    for (let gi = 0; gi < m.groups && ok; gi++) {
      const H = m.H[gi];
      // Inputs never non-zero on the calibration frames get no compensation (the damping keeps H
      // invertible) but keep their nearest rounding: GPTQ zeroes them, which would change the model
      // wherever a channel that was dead on a few frames wakes up in the field.
      // GPTQ's "act order": the inputs with the most energy first, while most weights are still free to compensate.
      const order = [...Array(m.d).keys()].sort((a, b) => H[b * m.d + b] - H[a * m.d + a]);
      const U = inverseCholeskyUpper(H, m.d, order, opts.damp ?? 0.01);
      if (!U) { ok = false; break; }
      const position = new Map(order.map((i, a) => [i, a]));
      // Each position's pair partners, as positions in `order`.
      const partnersAt = order.map((i) => (partners[i] ?? []).map((j) => position.get(j)!));
      for (let r = 0; r < rowsPerGroup; r++) {
        const o = gi * rowsPerGroup + r;
        const w = Float64Array.from(W.subarray(o * m.d, (o + 1) * m.d));
        const s = rowScale(w, grid, (i) => position.get(i)!);
        if (!s) continue;
        quantizeRow(w, order, U, s.scale, s.frozen, grid.qmax, partnersAt);
        W.set(w, o * m.d);
      }
    }
    if (!ok) { report.skipped++; continue; }
    g.initializers.set(m.node.inputs[1], floatTensor(wt.dims, W));
    report.convs++;
  }
  return { model, report };
}
