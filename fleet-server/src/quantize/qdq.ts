/**
 * QDQ placement, in the form ONNX Runtime fuses into integer kernels (DQ → Conv → Q becomes
 * QLinearConv, DQ → Add → Q QLinearAdd, DQ → Transpose/Reshape/MaxPool → Q drops to int8 data
 * movement when both sides share scale and zero point): onnxruntime.ai/docs/performance/model-optimizations/quantization.html
 * ("QDQ format", "Quantize activations and weights").
 * - every float activation read by a quantizable, non-excluded node gets one Q→DQ pair right after
 *   its producer, and all its consumers read the DQ output;
 * - weights: per-channel symmetric int8 (axis 0) for Conv, per-tensor for MatMul/Gemm, with binary16
 *   scales stored as halves on CPU; Conv/Gemm bias: float (binary16 on CPU where the Conv writes int8),
 *   which onnxruntime quantizes to int32 with scale sIn·sW[c] at load, or with `bias: 'int32'` (Convs
 *   on CPU) those integers and that scale through a DequantizeLinear; other float constants read by
 *   quantized ops: per tensor, in the activations' type;
 * - shape-only ops (Transpose, Reshape, MaxPool, ...) share one scale between input and output;
 * - a Mul by a positive scalar constant (hard-swish's ×1/6) is dropped: its output reuses the input's
 *   integers with the scale times the constant;
 * - activations: uint8 asymmetric on CPU (int8 on request), int8 symmetric for TensorRT;
 * - on CPU (asymmetric) a Relu or Clip(0, …) right after a Conv, an Add or a Concat is folded into that op's
 *   output quantization (the clamp of Q with zero point at its type's lowest value is the ReLU), as
 *   ORT's own quantizer does for Conv;
 * - the head (nodes after the last Conv/MatMul) and any `exclude`d node stay float.
 */
import { DataType, attr, floatTensor, intAttr, tensorToFloat32, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from '../convert/onnx/model.js';
import { removeDeadNodes } from '../convert/onnx/passes.js';
import { floatOutputConvsAsMatMul } from './float-head-matmul.js';
import { analyzeGraph, headNodes, nodeKey } from './graph-info.js';
import { activationParams, activationParamsU8, allHalfExact, biasScaleFloor, halfTensor, quantizeBias, quantizePerChannel, roundHalfEven, toHalf, weightGridFor, type QParams, type WeightRange } from './qmath.js';
import type { TensorRange } from './ranges.js';
import { InputError, ModelError } from '../../../agent/src/util/errors.js';

export type QuantTarget = 'cpu' | 'tensorrt';

const QUANTIZABLE = new Set(['Conv', 'MatMul', 'Gemm', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool',
  'Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Relu', 'Clip', 'Sigmoid', 'Resize', 'LeakyRelu']);
/** Ops whose output takes its input's quantization parameters (values are moved, never computed). */
const SAME_SCALE = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'MaxPool', 'Resize']);
/** Inputs past the first are parameters (shape, axes, clip bounds, scales), never quantized. */
const DATA_INPUT0_ONLY = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Clip', 'Resize', 'Flatten', 'Transpose', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Relu', 'Sigmoid', 'LeakyRelu']);

export interface QuantPlanOptions {
  target: QuantTarget;
  /** Node names (or first-output names) to keep in float. */
  exclude?: string[];
  /** Keep the post-processing head in float (default true). */
  floatHead?: boolean;
  perChannel?: boolean;
  /**
   * Which ops compute in int8: 'all' (default) also quantizes Add/Mul/Concat/Sigmoid and the shape
   * ops (ORT then runs QLinearAdd/QLinearMul and moves int8 through Transpose/Reshape: fastest on the
   * CenterNet's hard-swish chains); 'weighted' quantizes only the inputs and outputs of Conv/MatMul/Gemm,
   * so elementwise chains between them run in float between one DQ and one Q.
   */
  ops?: 'weighted' | 'all';
  /** Activations to keep in float (mixed precision, from the sensitivity search); Convs reading them stay float too. */
  keepFloat?: string[];
  /**
   * On CPU, the ops whose following Relu/Clip(0, …) folds into their output's Q (default
   * ACTIVATION_FOLDS_INTO: Conv, Add, Concat). The INT8 TFLite export's sensitivity search passes what
   * TFLite fuses (its fuse.ts: into CONV_2D, DEPTHWISE_CONV_2D and ADD, not CONCATENATION), so it
   * rounds the tensors that export rounds.
   */
  foldInto?: readonly string[];
  /**
   * How a Conv/Gemm that writes int8 stores its bias: 'float' (default: onnxruntime quantizes it to int32
   * with scale sIn·sW[c] at load, so the file holds no bias scale), or 'int32': an int32 initializer
   * read through a DequantizeLinear with that scale, as ORT's own quantizer writes it, for runtimes that
   * fuse only a DQ-fed bias (onnxruntime before its WeightBiasQuantization pass runs such a Conv in
   * float). Costs 4–6 bytes more a channel. Convs only (a Gemm keeps its float bias), target cpu only.
   */
  bias?: 'float' | 'int32';
  /**
   * Activation type on CPU: uint8 (default; ORT's U8S8 format, the only one for which onnxruntime
   * 1.30 on x86 fused our depthwise Convs into QLinearConv — with int8 activations 32 of 69 BlazeFace
   * Convs stayed DQ → float Conv, measured with optimizedModelFilePath) or int8. TensorRT always gets
   * symmetric int8. Weights are int8 either way.
   */
  activationType?: 'int8' | 'uint8';
  /**
   * Weight range (qmath.weightGridFor): CPU builds default to 'reduced' (weights whose pairs cannot
   * saturate the int16 sums of the integer GEMMs on x86 CPUs without VNNI, as full-range ones do);
   * TensorRT always gets 'full'.
   */
  weightRange?: WeightRange;
  /**
   * How a CPU build stores the weights of a Conv that stays float because it reads an activation kept
   * float (keepFloat). 'int8' (default): wherever that is exact, i.e. the weights GPTQ left on the
   * int8 grid (prepare.ts), as int8 integers read through Cast → Mul by the per-channel scale. Both
   * read only constants, so onnxruntime folds them into a float initializer at load and the Conv runs
   * as fast as with float weights in the file (a DequantizeLinear there is not folded: onnxruntime
   * keeps DQs for its QDQ fusions, and such a Conv, its weights computed each run, lost its NCHWc
   * kernels: a CenterNet `--target-snr 30` build took 191 ms a run, against 125 with Cast → Mul and 129
   * with float weights, measured side by side). The file stays near the INT8 size, and the
   * Conv computes with the weights the sensitivity search measured. 'float': float weights, which the
   * builder (quantize.ts buildInt8) gives back their unrounded values. TensorRT builds keep them float.
   */
  floatConvWeights?: 'float' | 'int8';
}

/** The weight range a build for `target` stores: TensorRT's int8 has no such saturation, so full there. */
export function weightRangeFor(target: QuantTarget, asked?: WeightRange): WeightRange {
  return target === 'tensorrt' ? 'full' : asked ?? 'reduced';
}

/** How a build for `target` stores the weights of Convs kept float (QuantPlanOptions.floatConvWeights): int8 by default on CPU, float for TensorRT. */
export function floatConvWeightsFor(target: QuantTarget, asked?: 'float' | 'int8'): 'float' | 'int8' {
  return target === 'cpu' ? asked ?? 'int8' : 'float';
}

export interface QuantPlan {
  model: OnnxModel;
  /** Activations to calibrate and quantize. */
  activations: string[];
  /** Tensor → representative of its same-scale group. */
  groupOf: Map<string, string>;
  excluded: Set<string>;
  foldedActivations: number;
  /** Each kept fold: the producer's own output (no longer in the plan's model) and the producer's op. */
  foldedTensors: { tensor: string; producer: string }[];
  options: QuantPlanOptions;
  quantOps: Set<string>;
}

export function cloneModel(m: OnnxModel): OnnxModel {
  const g = m.graph;
  return {
    ...m, opsetImports: m.opsetImports.map((o) => ({ ...o })), metadataProps: { ...m.metadataProps },
    graph: { ...g, nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attributes: [...n.attributes] })),
      initializers: new Map(g.initializers), inputs: [...g.inputs], outputs: [...g.outputs], valueInfo: [...g.valueInfo] },
  };
}

function clipIsRelu(n: OnnxNode, inits: Map<string, OnnxTensor>): boolean {
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const lo = n.inputs[1] ? inits.get(n.inputs[1]) : undefined;
  if (lo?.dataType === DataType.FLOAT) return tensorToFloat32(lo)[0] === 0;
  const a = attr(n, 'min');
  return a?.type === 'float' && a.value === 0;
}

const WEIGHTED = new Set(['Conv', 'MatMul', 'Gemm']);
/**
 * Producers whose Relu/Clip(0, …) folds into their output's Q. Add: a residual Add → ReLU (BlazeFace
 * has 31) otherwise quantizes twice, the sum over its signed range and the ReLU output over [0, max];
 * onnxruntime fuses DQ → Add → Q into QLinearAdd but cannot fuse the ReLU between two Q/DQ pairs, so
 * every block kept a DQ → Q requantization of a full feature map (3.6 of 21 profiled ms a BlazeFace
 * run on an AVX2 EPYC). Folded, the Add's one Q clamps at zero and the grid spans [0, max] only.
 * Concat: the CenterNet head's three Concat → ReLU (QLinearConcat → DQ → Q, the last one on a
 * 128×128×128 map) rounded first to the Concat's signed grid, about 5× coarser than the ReLU's.
 */
export const ACTIVATION_FOLDS_INTO: readonly string[] = ['Conv', 'Add', 'Concat'];

function isQuantizedConsumer(n: OnnxNode, input: string, excluded: Set<string>, ops: Set<string>): boolean {
  if (!ops.has(n.opType) || excluded.has(nodeKey(n))) return false;
  return DATA_INPUT0_ONLY.has(n.opType) ? n.inputs[0] === input : true;
}

export function planQuantization(source: OnnxModel, opts: QuantPlanOptions): QuantPlan {
  if (opts.bias === 'int32' && opts.target !== 'cpu') throw new InputError(`bias 'int32' applies to target cpu; ${opts.target} builds keep the bias float`);
  const model = cloneModel(source);
  const g = model.graph;
  let info = analyzeGraph(g);
  const excluded = new Set(opts.exclude ?? []);
  const headSet = opts.floatHead !== false ? headNodes(g, info) : new Set<string>();
  for (const k of headSet) excluded.add(k);
  const keepFloat = new Set(opts.keepFloat ?? []);
  for (const t of keepFloat) for (const c of info.consumers.get(t) ?? []) if (WEIGHTED.has(c.opType) && c.inputs[0] === t) excluded.add(nodeKey(c));
  let folded = 0;
  const foldedPairs: { producer: OnnxNode; act: OnnxNode; producerOut: string }[] = [];
  if (opts.target === 'cpu') {
    const drop = new Set<OnnxNode>();
    const foldInto = new Set(opts.foldInto ?? ACTIVATION_FOLDS_INTO);
    for (const n of g.nodes) {
      if (!foldInto.has(n.opType) || excluded.has(nodeKey(n))) continue;
      const cons = info.consumers.get(n.outputs[0]) ?? [];
      const act = cons[0];
      // Not when the activation's output leaves the graph: the graph output would lose its clamp.
      if (cons.length !== 1 || info.graphOutputs.has(n.outputs[0]) || info.graphOutputs.has(act.outputs[0]) || excluded.has(nodeKey(act)) || !clipIsRelu(act, g.initializers)) continue;
      foldedPairs.push({ producer: n, act, producerOut: n.outputs[0] });
      n.outputs[0] = act.outputs[0];
      drop.add(act);
      folded++;
    }
    g.nodes = g.nodes.filter((n) => !drop.has(n));
    info = analyzeGraph(g);
  }
  const quantOps = opts.ops === 'weighted' ? WEIGHTED : QUANTIZABLE;
  // A tensor that reaches an excluded (float) Conv through float ops stays float: the Conv was excluded
  // because rounding its input costs too much, so rounding it one op earlier must not happen either.
  const memo = new Map<string, boolean>();
  const reachesFloatConv = (t: string): boolean => {
    const hit = memo.get(t);
    if (hit !== undefined) return hit;
    memo.set(t, false);
    let r = false;
    for (const c of info.consumers.get(t) ?? []) {
      if (WEIGHTED.has(c.opType)) r ||= excluded.has(nodeKey(c));
      else if (!headSet.has(nodeKey(c))) for (const o of c.outputs) r ||= reachesFloatConv(o);
      if (r) break;
    }
    memo.set(t, r);
    return r;
  };
  const activations: string[] = [];
  const seen = new Set<string>();
  const consider = (t: string): void => {
    if (!t || seen.has(t) || keepFloat.has(t) || g.initializers.has(t) || info.elemType.get(t) !== DataType.FLOAT) return;
    seen.add(t);
    const cons = info.consumers.get(t) ?? [];
    const prod = info.producer.get(t);
    // A weighted op's output is quantized whenever something outside the float head reads it: that Q completes the QLinearConv pattern.
    const weightedOut = prod !== undefined && WEIGHTED.has(prod.opType) && !excluded.has(nodeKey(prod)) && cons.some((c) => !excluded.has(nodeKey(c))) && !reachesFloatConv(t);
    if (weightedOut || cons.some((c) => isQuantizedConsumer(c, t, excluded, quantOps))) activations.push(t);
  };
  for (const i of g.inputs) consider(i.name);
  for (const n of g.nodes) for (const o of n.outputs) consider(o);
  // A fold is only sound when the activation's output really gets a Q (its clamp is the ReLU); put the others back.
  const quantized = new Set(activations);
  for (const f of foldedPairs) {
    if (quantized.has(f.act.outputs[0])) continue;
    f.producer.outputs[0] = f.producerOut;
    g.nodes.splice(g.nodes.indexOf(f.producer) + 1, 0, f.act);
    folded--;
  }
  // Same-scale groups: union-find over input→output of shape-only ops when both sides are quantized.
  const parent = new Map<string, string>();
  const find = (t: string): string => { let r = t; while (parent.get(r) !== undefined && parent.get(r) !== r) r = parent.get(r) as string; parent.set(t, r); return r; };
  const q = new Set(activations);
  for (const t of activations) parent.set(t, t);
  for (const n of g.nodes) {
    if (!SAME_SCALE.has(n.opType) || !quantOps.has(n.opType) || excluded.has(nodeKey(n))) continue;
    const a = n.inputs[0], b = n.outputs[0];
    if (q.has(a) && q.has(b)) parent.set(find(b), find(a));
  }
  const groupOf = new Map<string, string>();
  for (const t of activations) groupOf.set(t, find(t));
  const foldedTensors = foldedPairs.filter((f) => quantized.has(f.act.outputs[0])).map((f) => ({ tensor: f.producerOut, producer: f.producer.opType }));
  return { model, activations, groupOf, excluded, foldedActivations: folded, foldedTensors, options: opts, quantOps };
}

/**
 * For a Conv or Gemm that stays float with a float weight initializer: the axis and size of its data
 * input's channels (Conv: axis 1, weight C_in/group × group; Gemm without transA: axis 1, K).
 */
function perAxisInputDq(n: OnnxNode, inits: Map<string, OnnxTensor>): { axis: number; channels: number } | undefined {
  const w = inits.get(n.inputs[1]);
  if (!w || w.dataType !== DataType.FLOAT) return undefined;
  if (n.opType === 'Conv' && w.dims.length >= 3) return { axis: 1, channels: w.dims[1] * intAttr(n, 'group', 1) };
  if (n.opType === 'Gemm' && w.dims.length === 2 && intAttr(n, 'transA', 0) === 0) return { axis: 1, channels: intAttr(n, 'transB', 0) ? w.dims[1] : w.dims[0] };
  return undefined;
}

/** Calibrated ranges per tensor → ranges per same-scale group (the union of its members). */
export function groupRanges(plan: QuantPlan, ranges: Map<string, TensorRange>): Map<string, TensorRange> {
  const byGroup = new Map<string, TensorRange>();
  for (const t of plan.activations) {
    const r = ranges.get(t);
    if (!r) continue;
    const gkey = plan.groupOf.get(t) ?? t;
    const cur = byGroup.get(gkey);
    byGroup.set(gkey, cur ? { min: Math.min(cur.min, r.min), max: Math.max(cur.max, r.max) } : { ...r });
  }
  const out = new Map<string, TensorRange>();
  for (const t of plan.activations) { const r = byGroup.get(plan.groupOf.get(t) ?? t); if (r) out.set(t, r); }
  return out;
}

export interface QdqStats {
  quantizedActivations: number;
  quantizedWeights: number;
  /** Biases of Convs/Gemms with int8 inputs, weights and output: run as int32 (stored float, quantized by onnxruntime at load as qmath.quantizeBias does; or stored int32 with QuantPlanOptions.bias 'int32'). */
  int32Biases: number;
  floatNodes: number;
  /** Float Convs whose weights are stored int8 (QuantPlanOptions.floatConvWeights 'int8'). */
  int8WeightFloatConvs: number;
}

/**
 * Muls by a positive scalar constant between two quantized activations (hard-swish's ×1/6): on the
 * integer grid such a Mul only changes the scale, so the QDQ build gives its output the input's
 * integers with scale c·s_x and drops it: no kernel, and one rounding fewer. Only where the output
 * shares its scale with nothing else (no same-scale group) and is not a graph output.
 */
function scaledAliases(plan: QuantPlan): Map<string, { node: OnnxNode; x: string; y: string; c: number }> {
  const out = new Map<string, { node: OnnxNode; x: string; y: string; c: number }>();
  if (!plan.quantOps.has('Mul')) return out;
  const g = plan.model.graph;
  const quantized = new Set(plan.activations);
  const groupSize = new Map<string, number>();
  for (const t of plan.activations) { const k = plan.groupOf.get(t) ?? t; groupSize.set(k, (groupSize.get(k) ?? 0) + 1); }
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (const n of g.nodes) {
    if (n.opType !== 'Mul' || plan.excluded.has(nodeKey(n))) continue;
    const k = n.inputs.findIndex((i) => { const t = g.initializers.get(i); return t?.dataType === DataType.FLOAT && t.dims.reduce((a, b) => a * b, 1) === 1; });
    if (k < 0) continue;
    const c = tensorToFloat32(g.initializers.get(n.inputs[k])!)[0];
    const x = n.inputs[1 - k], y = n.outputs[0];
    if (!(c > 0) || !Number.isFinite(c) || !quantized.has(x) || !quantized.has(y) || outputs.has(y)) continue;
    if ((plan.groupOf.get(y) ?? y) !== y || groupSize.get(y) !== 1) continue;
    out.set(y, { node: n, x, y, c });
  }
  return out;
}

/** Inserts Q/DQ pairs into the planned model using the calibrated ranges. Returns the new model (the plan's model is consumed). */
export function insertQdq(plan: QuantPlan, ranges: Map<string, TensorRange>): { model: OnnxModel; stats: QdqStats; params: Map<string, QParams> } {
  const model = plan.model;
  const g = model.graph;
  const symmetric = plan.options.target === 'tensorrt';
  const shared = groupRanges(plan, ranges);
  const params = new Map<string, QParams>();
  const newNodes: OnnxNode[] = [];
  // Short generated names (`~qN/...`): TF-style names are ~100 bytes and would otherwise dominate a small int8 file.
  let serial = 0;
  const fresh = (): string => `~q${(serial++).toString(36)}`;
  const qOut = new Map<string, { q: string; s: string; z: string }>();
  const u8 = plan.options.activationType !== 'int8' && !symmetric;
  const makeQ = (t: string, p: QParams, reuse?: { q: string; z: string }): void => {
    params.set(t, p);
    const id = fresh();
    const names = { q: reuse?.q ?? `${id}/q`, s: `${id}/s`, z: reuse?.z ?? `${id}/z` };
    g.initializers.set(names.s, floatTensor([], [p.scale]));
    if (!reuse) {
      g.initializers.set(names.z, { dims: [], dataType: u8 ? DataType.UINT8 : DataType.INT8, data: Uint8Array.of(p.zeroPoint & 0xff) });
      newNodes.push({ opType: 'QuantizeLinear', name: `${id}/Q`, inputs: [t, names.s, names.z], outputs: [names.q], attributes: [] });
    }
    qOut.set(t, names);
  };
  const aliases = scaledAliases(plan);
  for (const t of plan.activations) {
    const r = shared.get(t);
    if (r && !aliases.has(t)) makeQ(t, u8 ? activationParamsU8(r) : activationParams(r, symmetric));
  }
  // y = c·x with x quantized: y's integers are x's, its scale c·s_x. The Mul and one rounding go away.
  const dropped = new Set<OnnxNode>();
  for (const n of g.nodes) {
    const a = n.opType === 'Mul' ? aliases.get(n.outputs[0]) : undefined;
    if (!a || a.node !== n) continue;
    const src = qOut.get(a.x), px = params.get(a.x);
    if (src && px) {
      makeQ(a.y, { scale: px.scale * a.c, zeroPoint: px.zeroPoint }, src);
      dropped.add(n);
    } else {
      const r = shared.get(a.y);
      if (r) makeQ(a.y, u8 ? activationParamsU8(r) : activationParams(r, symmetric));
    }
  }
  g.nodes = g.nodes.filter((n) => !dropped.has(n));
  // One DequantizeLinear per consumer (as ORT's quantizer's dedicated QDQ pairs): ORT fuses a DQ → op → Q group
  // only when the DQ feeds that op alone.
  // `perAxis`: for a Conv/Gemm that stays float. ORT's WeightBiasQuantization
  // (onnxruntime/core/optimizer/qdq_transformer/weight_bias_quantization.cc) quantizes, per tensor, the
  // float weights of a Conv/Gemm fed by a per-tensor DQ, and the QDQ fusion then runs it as QLinearConv:
  // an excluded Conv would not stay float. The same scale and zero point repeated along the channel
  // axis are the same values, and that rule does not match a per-axis DQ.
  const dqFor = (t: string, perAxis?: { axis: number; channels: number }): string => {
    const names = qOut.get(t);
    if (!names) return t;
    const id = fresh();
    if (!perAxis) {
      newNodes.push({ opType: 'DequantizeLinear', name: `${id}/DQ`, inputs: [names.q, names.s, names.z], outputs: [`${id}/dq`], attributes: [] });
      return `${id}/dq`;
    }
    const p = params.get(t) as QParams;
    g.initializers.set(`${id}/s`, floatTensor([perAxis.channels], new Array<number>(perAxis.channels).fill(p.scale)));
    g.initializers.set(`${id}/z`, { dims: [perAxis.channels], dataType: u8 ? DataType.UINT8 : DataType.INT8, data: new Uint8Array(perAxis.channels).fill(p.zeroPoint & 0xff) });
    newNodes.push({ opType: 'DequantizeLinear', name: `${id}/DQ`, inputs: [names.q, `${id}/s`, `${id}/z`], outputs: [`${id}/dq`], attributes: [{ name: 'axis', type: 'int', value: perAxis.axis }] });
    return `${id}/dq`;
  };
  let weights = 0, biases = 0;
  // A CPU build stores weight scales (binary16 values by construction: qmath.halfUp) as halves read
  // through a Cast; onnxruntime folds the Cast at load and still fuses the QDQ groups (checked with
  // optimizedModelFilePath). TensorRT's ONNX parser wants the scales as initializers: float32 there.
  const halfScales = plan.options.target === 'cpu';
  const setScales = (name: string, dims: number[], scales: Float32Array): void => {
    if (!halfScales || !allHalfExact(scales)) g.initializers.set(name, floatTensor(dims, scales));
    else newNodes.push(halfConstant(g, `${name}16`, name, dims, scales));
  };
  const halfBias = (bias: OnnxTensor): string => {
    const id = fresh();
    newNodes.push(halfConstant(g, `${id}/b16`, `${id}/b`, bias.dims, tensorToFloat32(bias)));
    return `${id}/b`;
  };
  /** The bias as int32 with scale sIn·sW[c] through a per-channel DQ (QuantPlanOptions.bias 'int32'). */
  const int32Bias = (bias: OnnxTensor, inputScale: number, weightScales: Float32Array): string => {
    const qb = quantizeBias(tensorToFloat32(bias), inputScale, weightScales);
    const id = fresh();
    g.initializers.set(`${id}/b32`, { dims: bias.dims, dataType: DataType.INT32, data: new Uint8Array(qb.data.buffer) });
    g.initializers.set(`${id}/bs`, floatTensor([qb.scales.length], qb.scales));
    newNodes.push({ opType: 'DequantizeLinear', name: `${id}/DQb`, inputs: [`${id}/b32`, `${id}/bs`], outputs: [`${id}/b`], attributes: [{ name: 'axis', type: 'int', value: 0 }] });
    return `${id}/b`;
  };
  const weightDq = new Map<string, { dq: string; scales: Float32Array }>();
  const constDq = new Map<string, string>();
  const perChannel = plan.options.perChannel !== false;
  for (const n of g.nodes) {
    if (plan.excluded.has(nodeKey(n)) || !plan.quantOps.has(n.opType)) continue;
    const isWeighted = n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul';
    const xParams = params.get(n.inputs[0]);
    n.inputs = n.inputs.map((inp, k) => {
      const init = g.initializers.get(inp);
      if (!init) return dqFor(inp);
      if (init.dataType !== DataType.FLOAT || (DATA_INPUT0_ONLY.has(n.opType) && k > 0)) return inp;
      if (isWeighted && k === 1 && xParams) {
        let w = weightDq.get(inp);
        if (!w) {
          const channels = n.opType === 'Conv' && perChannel ? init.dims[0] : 1;
          const bias = n.inputs[2] ? g.initializers.get(n.inputs[2]) : undefined;
          // Per tensor (one channel: --per-tensor, Gemm), the one scale must hold every channel's bias.
          const bf = bias?.dataType === DataType.FLOAT && (bias.dims[0] === channels || channels === 1) ? biasScaleFloor(tensorToFloat32(bias), xParams.scale) : undefined;
          const floor = bf && channels === 1 ? [Math.max(...bf)] : bf;
          const grid = weightGridFor(n.opType, init.dims, intAttr(n, 'group', 1), weightRangeFor(plan.options.target, plan.options.weightRange), halfScales);
          const qw = quantizePerChannel(tensorToFloat32(init), channels, floor, grid);
          const id = fresh();
          const dq = `${id}/w`;
          g.initializers.set(`${id}/w8`, { dims: init.dims, dataType: DataType.INT8, data: new Uint8Array(qw.data.buffer) });
          setScales(`${id}/ws`, channels > 1 ? [channels] : [], qw.scales);
          // No zero-point input: it defaults to 0 of the data's type (ONNX DequantizeLinear), which is what
          // symmetric weights have; writing the zeros out cost 4.6% of the CenterNet file.
          newNodes.push({ opType: 'DequantizeLinear', name: `${id}/DQw`, inputs: [`${id}/w8`, `${id}/ws`], outputs: [dq], attributes: channels > 1 ? [{ name: 'axis', type: 'int', value: 0 }] : [] });
          w = { dq, scales: qw.scales };
          weightDq.set(inp, w);
          weights++;
        }
        return w.dq;
      }
      if (isWeighted && k === 2 && n.opType !== 'MatMul' && xParams) {
        // The bias stays float: onnxruntime quantizes a float Conv/Gemm bias whose input and weight come
        // from DQs to int32 at load (WeightBiasQuantization, core/optimizer/qdq_transformer/
        // weight_bias_quantization.cc, BiasQuantization before it; a pass newer than 1.20.0, checked on
        // 1.30, the version package.json pins), with scale sIn·sW[c] computed in float32: the same
        // integers as an int32 DQ, without storing that scale (4 bytes a channel). An onnxruntime without
        // the pass does not fuse such a Conv (every input of a QDQ group must be a DQ) and runs it in
        // float: right, slower. biasScaleFloor above keeps those integers within int32. A CPU build
        // whose Conv writes a quantized output stores it as binary16 where that moves no bias by more
        // than 1/32 of an output step (HALF_BIAS_STEPS).
        const wIn = weightDq.get(n.inputs[1]);
        if (!wIn) return inp;
        if (qOut.has(n.outputs[0])) biases++;
        // Conv only: its bias is [C], one scale per channel on axis 0. A Gemm bias may be [1, N] or a
        // scalar, which a per-axis DQ cannot read: it stays float (onnxruntime quantizes it at load too).
        if (plan.options.bias === 'int32' && n.opType === 'Conv' && qOut.has(n.outputs[0])) return int32Bias(init, xParams.scale, wIn.scales);
        const out = halfScales && qOut.has(n.outputs[0]) ? params.get(n.outputs[0]) : undefined;
        return out && halfKeeps(tensorToFloat32(init), out.scale * HALF_BIAS_STEPS) ? halfBias(init) : inp;
      }
      if (isWeighted) return inp;
      // A float constant read by a quantized elementwise op (hard-swish's +3 and ×1/6): per tensor, in the
      // activations' type. ORT fuses DQ → Mul/Add → Q into QLinearMul/QLinearAdd only when both inputs
      // have one type: with int8 constants beside uint8 activations the CenterNet's 28 ×1/6 Muls ran
      // float between a DQ and a Q. A scalar c lands exactly on the grid (scale |c|/255).
      let dq = constDq.get(inp);
      if (!dq) {
        const values = tensorToFloat32(init);
        const id = fresh();
        dq = `${id}/c`;
        if (u8) {
          let lo = 0, hi = 0;
          for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
          const p = activationParamsU8({ min: lo, max: hi });
          g.initializers.set(`${id}/c8`, { dims: init.dims, dataType: DataType.UINT8, data: Uint8Array.from(values, (v) => Math.max(0, Math.min(255, roundHalfEven(v / p.scale) + p.zeroPoint))) });
          g.initializers.set(`${id}/cs`, floatTensor([], [p.scale]));
          g.initializers.set(`${id}/cz`, { dims: [], dataType: DataType.UINT8, data: Uint8Array.of(p.zeroPoint) });
        } else {
          const qc = quantizePerChannel(values, 1);
          g.initializers.set(`${id}/c8`, { dims: init.dims, dataType: DataType.INT8, data: new Uint8Array(qc.data.buffer) });
          g.initializers.set(`${id}/cs`, floatTensor([], qc.scales));
          g.initializers.set(`${id}/cz`, { dims: [], dataType: DataType.INT8, data: new Uint8Array(1) });
        }
        newNodes.push({ opType: 'DequantizeLinear', name: `${id}/DQc`, inputs: [`${id}/c8`, `${id}/cs`, `${id}/cz`], outputs: [dq], attributes: [] });
        constDq.set(inp, dq);
      }
      return dq;
    });
  }
  // Float Convs reading an activation kept float: their on-grid weights as int8 (floatConvWeights).
  let int8WeightFloatConvs = 0;
  const keepFloat = new Set(plan.options.keepFloat ?? []);
  if (floatConvWeightsFor(plan.options.target, plan.options.floatConvWeights) === 'int8') {
    const stored = new Map<string, string>();
    for (const n of g.nodes) {
      const init = n.opType === 'Conv' ? g.initializers.get(n.inputs[1]) : undefined;
      if (!init || init.dataType !== DataType.FLOAT || !plan.excluded.has(nodeKey(n)) || !keepFloat.has(n.inputs[0])) continue;
      // A weight two such Convs share is stored once.
      const again = stored.get(n.inputs[1]);
      if (again) { n.inputs[1] = again; int8WeightFloatConvs++; continue; }
      const w = tensorToFloat32(init);
      const grid = weightGridFor(n.opType, init.dims, intAttr(n, 'group', 1), weightRangeFor(plan.options.target, plan.options.weightRange), halfScales);
      const qw = quantizePerChannel(w, init.dims[0], undefined, grid);
      const per = w.length / init.dims[0];
      let exact = true;
      for (let k = 0; k < w.length && exact; k++) exact = Math.fround(qw.data[k] * qw.scales[Math.floor(k / per)]) === w[k];
      if (!exact) continue;
      const id = fresh();
      g.initializers.set(`${id}/w8`, { dims: init.dims, dataType: DataType.INT8, data: new Uint8Array(qw.data.buffer) });
      setScales(`${id}/ws`, [init.dims[0], ...init.dims.slice(1).map(() => 1)], qw.scales);
      newNodes.push(
        { opType: 'Cast', name: `${id}/Cw`, inputs: [`${id}/w8`], outputs: [`${id}/wf`], attributes: [{ name: 'to', type: 'int', value: DataType.FLOAT }] },
        { opType: 'Mul', name: `${id}/Mw`, inputs: [`${id}/wf`, `${id}/ws`], outputs: [`${id}/w`], attributes: [] },
      );
      stored.set(n.inputs[1], `${id}/w`);
      n.inputs[1] = `${id}/w`;
      int8WeightFloatConvs++;
    }
  }
  // Float consumers of a quantized tensor read the DQ output too, so the producer's only reader is Q (ORT's fusion needs that).
  for (const n of g.nodes) {
    if (!plan.excluded.has(nodeKey(n)) && plan.quantOps.has(n.opType)) continue;
    const floatWeighted = perAxisInputDq(n, g.initializers);
    n.inputs = n.inputs.map((t, k) => dqFor(t, k === 0 ? floatWeighted : undefined));
  }
  const given = () => new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  g.nodes = topoSort([...newNodes, ...g.nodes], given());
  // On CPU the pointwise Convs that write float (into the head) run as int8 MatMuls (float-head-matmul.ts).
  if (plan.options.target === 'cpu' && floatOutputConvsAsMatMul(g) > 0) g.nodes = topoSort(g.nodes, given());
  removeDeadNodes(g);
  g.valueInfo = [];
  const def = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (def) def.version = Math.max(def.version, 13); else model.opsetImports.push({ domain: '', version: 13 });
  const floatNodes = g.nodes.filter((n) => !['QuantizeLinear', 'DequantizeLinear'].includes(n.opType) && plan.excluded.has(nodeKey(n))).length;
  return { model, stats: { quantizedActivations: params.size, quantizedWeights: weights, int32Biases: biases, floatNodes, int8WeightFloatConvs }, params };
}

/** Stores `values` as the binary16 initializer `half`; returns the Cast that reads it as the float `name`. */
export function halfConstant(g: OnnxGraph, half: string, name: string, dims: number[], values: ArrayLike<number>): OnnxNode {
  g.initializers.set(half, halfTensor(dims, values));
  return { opType: 'Cast', name: '', inputs: [half], outputs: [name], attributes: [{ name: 'to', type: 'int', value: DataType.FLOAT }] };
}

/**
 * How far (in output steps) storing a bias as binary16 may move it. Its relative error is up to 2^-11:
 * on the CenterNet's minmax build that was under 0.03 of a step for 99% of the biases, but 4.2 steps in
 * a squeeze-excite Conv whose biases near ±1.5 feed an output 0.04 wide (the rounding itself is ±0.5
 * step, 0.29 RMS): that one keeps float32.
 */
const HALF_BIAS_STEPS = 1 / 32;

/** True when every value survives binary16 within `tolerance`. */
function halfKeeps(values: Float32Array, tolerance: number): boolean {
  return values.every((v) => Math.abs(toHalf(v) - v) <= tolerance);
}

/** Kahn's order over value names: a node runs once all its inputs exist. */
export function topoSort(nodes: OnnxNode[], available: Set<string>): OnnxNode[] {
  const have = new Set(available);
  have.add('');
  const out: OnnxNode[] = [];
  let pending = nodes;
  while (pending.length > 0) {
    const next: OnnxNode[] = [];
    for (const n of pending) {
      if (n.inputs.every((i) => have.has(i))) { out.push(n); for (const o of n.outputs) have.add(o); } else next.push(n);
    }
    if (next.length === pending.length) throw new ModelError(`graph has a cycle or a missing input near ${next[0].name} (inputs ${next[0].inputs.join(', ')})`);
    pending = next;
  }
  return out;
}
