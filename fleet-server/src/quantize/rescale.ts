/**
 * Channel rescaling across hard-swish and along residual streams. equalize.ts balances Conv → ReLU →
 * Conv pairs because ReLU is positively homogeneous; hard-swish, h(x) = x·relu6(x + 3)/6, is not, so
 * the CenterNet's MobileNetV3 stem and its hard-swish layers kept their unbalanced channels. Those were
 * the worst activations to round by far: the sensitivity search (sensitivity.ts) measured the stem
 * Conv's output alone at 9.6 dB and its hard-swish at 11.1 dB where the head begins, then the expand
 * layers' Conv outputs and hard-swishes at 21–29 dB, against 30–40 dB for everything else.
 *
 * The rewrite stays exact in float. A Conv's output channel c is multiplied by k_c (its weights' row
 * and bias), and the scaled tensor x' = k·x is followed through the ops that commute with a
 * per-channel factor: Transpose (the channel axis moves), Relu, ReduceMean over other axes, and Mul by
 * a tensor that does not carry the factor itself, which covers hard-swish's own two Muls and the
 * squeeze-excite gate. Where it meets a Conv the factor is absorbed into that Conv's input weights
 * (w/k). Hard-swish's gate relu6(x + 3) needs the true x: it becomes a depthwise 1×1 Conv of x' with
 * weights 1/k and bias 3 plus its Clip (rewriteGate), so the only rounded tensor there is the gate, in
 * [0, 6]. Anything else (a residual Add, Sigmoid, Concat) gets x back from a Mul by 1/k. So x' and
 * h' = k·h(x) are rounded with balanced channels. This is cross-layer equalization (Nagel et al.,
 * "Data-Free Quantization Through Weight Equalization and Bias Correction", ICCV 2019, §4.1) carried
 * through a non-homogeneous activation by undoing the scale only where the activation needs the true
 * value.
 *
 * Residual streams get their own factor afterwards: a chain of skip-connection Adds and every Conv (or
 * per-channel Mul) feeding it is scaled as one region, taken back by the 1×1 Convs that read the sums.
 * One factor for the stem's hard-swish and its residual Add together was measured and is worse (summed
 * SNR at the head 11.7 dB against 20.2 dB undoing it before the Add): the sum has unbalanced channels
 * of its own.
 *
 * k_c comes from the calibrated per-channel maxima a_c: a_max/a_c when every absorbing Conv is
 * depthwise (its weights are quantized per channel, so dividing them costs nothing), otherwise
 * sqrt(a_max/a_c), the balance SmoothQuant uses (Xiao et al., 2023, eq. 4, α = 0.5) because a 1×1
 * Conv's weights for the scaled-up channels shrink within one per-output-channel scale. Capping k at 16
 * instead of 1000 cost 0.3 dB at the heatmap, at 4 it cost 5 dB (INT8 TFLite on vtest.avi).
 */
import { DataType, attr, floatTensor, intAttr, intsAttr, tensorToFloat32, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { analyzeGraph, nodeKey, type GraphInfo } from './graph-info.js';
import { cloneModel } from './qdq.js';

export interface RescaleRegion {
  /** What is scaled by k: Conv output rows, or the per-channel constant of a Mul. */
  producers: { node: OnnxNode; kind: 'conv' | 'mul' }[];
  /** Every tensor that carries the factor, with its channel axis. */
  tensors: Map<string, number>;
  /** Convs that take the factor back in their input weights. */
  absorbers: { node: OnnxNode; depthwise: boolean }[];
  /** Tensors given back unscaled (a Mul by 1/k) to the listed consumer, with the channel axis. */
  unscaled: { tensor: string; axis: number; consumer: OnnxNode }[];
}

function isScalarConst(model: OnnxModel, name: string): boolean {
  const t = model.graph.initializers.get(name);
  return t !== undefined && t.dims.reduce((a, b) => a * b, 1) === 1;
}

/** A float 4-D Conv whose weights (and bias) only it reads, so they can be rescaled in place. */
function ownWeights(model: OnnxModel, info: GraphInfo, n: OnnxNode): boolean {
  if (n.opType !== 'Conv') return false;
  const w = model.graph.initializers.get(n.inputs[1]);
  if (w?.dataType !== DataType.FLOAT || w.dims.length !== 4 || (info.consumers.get(n.inputs[1]) ?? []).length !== 1) return false;
  if (!n.inputs[2]) return true;
  return model.graph.initializers.get(n.inputs[2])?.dataType === DataType.FLOAT && (info.consumers.get(n.inputs[2]) ?? []).length === 1;
}

/** The axis of a rank-4 per-channel constant [C, 1, …] (see channelShape), if `name` is one with C channels. */
function channelConstAxis(model: OnnxModel, info: GraphInfo, name: string, channels: number): number | undefined {
  const t = model.graph.initializers.get(name);
  if (t?.dataType !== DataType.FLOAT || (info.consumers.get(name) ?? []).length !== 1 || t.dims[0] !== channels || t.dims.slice(1).some((d) => d !== 1) || t.dims.length > 4) return undefined;
  return 4 - t.dims.length;
}

/**
 * Plans the region that carries one factor per channel from the given Conv outputs; undefined when it
 * cannot be carried exactly (it would reach a graph output, a tensor would carry it twice, or nothing
 * absorbs it). With `throughAdds`, an Add of two tensors carries the factor when its other operand can
 * be made to carry it too (its Conv scaled, or the constant of a per-channel Mul, or another such Add):
 * a residual stream. Without, an Add gets the unscaled tensor.
 */
export function planRescale(model: OnnxModel, starts: OnnxNode[], opts: { throughAdds: boolean }, info: GraphInfo = analyzeGraph(model.graph)): RescaleRegion | undefined {
  const region: RescaleRegion = { producers: [], tensors: new Map(), absorbers: [], unscaled: [] };
  const channels = model.graph.initializers.get(starts[0]?.inputs[1] ?? '')?.dims[0];
  if (!channels) return undefined;
  const queue: string[] = [];
  let failed = false;
  const carry = (tensor: string, axis: number): void => {
    if (region.tensors.has(tensor)) { if (region.tensors.get(tensor) !== axis) failed = true; return; }
    if (info.graphOutputs.has(tensor)) { failed = true; return; }
    region.tensors.set(tensor, axis);
    queue.push(tensor);
  };
  const scaleConv = (n: OnnxNode): boolean => {
    const w = model.graph.initializers.get(n.inputs[1]);
    if (!ownWeights(model, info, n) || w?.dims[0] !== channels) return false;
    if (!region.producers.some((p) => p.node === n)) region.producers.push({ node: n, kind: 'conv' });
    carry(n.outputs[0], 1);
    return true;
  };
  /** Makes `tensor` carry the factor by scaling what produces it. */
  const makeCarry = (tensor: string, depth = 0): boolean => {
    if (region.tensors.has(tensor)) return true;
    const p = info.producer.get(tensor);
    if (!p || depth > 8 || model.graph.initializers.has(tensor)) return false;
    switch (p.opType) {
      case 'Conv': return scaleConv(p);
      case 'Transpose': {
        // Carrying the input carries the output when the Transpose is visited.
        return makeCarry(p.inputs[0], depth + 1);
      }
      case 'Mul': {
        const k = p.inputs.findIndex((i) => channelConstAxis(model, info, i, channels) !== undefined);
        if (k < 0 || region.tensors.has(p.inputs[1 - k])) return false;
        region.producers.push({ node: p, kind: 'mul' });
        carry(p.outputs[0], channelConstAxis(model, info, p.inputs[k], channels)!);
        return true;
      }
      case 'Add':
        if (p.inputs.some((i) => model.graph.initializers.has(i))) return false;
        return makeCarry(p.inputs[0], depth + 1) && makeCarry(p.inputs[1], depth + 1);
      default:
        return false;
    }
  };
  for (const s of starts) if (!scaleConv(s)) return undefined;
  while (queue.length > 0 && !failed) {
    const tensor = queue.shift()!;
    const axis = region.tensors.get(tensor)!;
    for (const c of info.consumers.get(tensor) ?? []) {
      const unscale = (): void => { region.unscaled.push({ tensor, axis, consumer: c }); };
      switch (c.opType) {
        case 'Transpose': {
          const perm = intsAttr(c, 'perm');
          if (!perm || perm.length !== 4) { unscale(); break; }
          carry(c.outputs[0], perm.indexOf(axis));
          break;
        }
        case 'Relu':
          carry(c.outputs[0], axis);
          break;
        case 'ReduceMean': {
          const axes = intsAttr(c, 'axes');
          const keep = attr(c, 'keepdims');
          if (!axes || c.inputs.length > 1 || (keep?.type === 'int' && keep.value === 0) || axes.some((a) => (a + 4) % 4 === axis)) { unscale(); break; }
          carry(c.outputs[0], axis);
          break;
        }
        case 'Mul': {
          const other = c.inputs[0] === tensor ? c.inputs[1] : c.inputs[0];
          // (k·x)·y = k·(x·y) for any y that does not itself carry k and does not mix channels: a
          // scalar constant, or a tensor (hard-swish's gate, the squeeze-excite gate).
          if (other === tensor || region.tensors.has(other)) return undefined;
          if (model.graph.initializers.has(other) && !isScalarConst(model, other)) { unscale(); break; }
          carry(c.outputs[0], axis);
          break;
        }
        case 'Add': {
          const other = c.inputs[0] === tensor ? c.inputs[1] : c.inputs[0];
          if (other === tensor) return undefined;
          if (!opts.throughAdds || model.graph.initializers.has(other)) { unscale(); break; }
          if (!makeCarry(other)) return undefined;
          carry(c.outputs[0], axis);
          break;
        }
        case 'Conv': {
          const w = model.graph.initializers.get(c.inputs[1]);
          const gr = intAttr(c, 'group', 1);
          const depthwise = gr !== 1 && w !== undefined && gr === w.dims[0] && w.dims[1] === 1;
          if (c.inputs[0] !== tensor || axis !== 1 || !ownWeights(model, info, c) || !(gr === 1 || depthwise)) { unscale(); break; }
          if (!region.absorbers.some((a) => a.node === c)) region.absorbers.push({ node: c, depthwise });
          break;
        }
        default:
          unscale();
      }
    }
  }
  // Nothing to gain where the factor is undone before any Conv takes it.
  return !failed && region.absorbers.length > 0 ? region : undefined;
}

/**
 * Seeds worth rescaling: Convs whose output reaches a hard-swish (an Add of a scalar constant,
 * possibly through Transposes) — exactly the activations equalize.ts cannot balance.
 */
export function findRescaleSeeds(model: OnnxModel, exclude: Set<string> = new Set()): OnnxNode[] {
  const info = analyzeGraph(model.graph);
  const seeds: OnnxNode[] = [];
  for (const n of model.graph.nodes) {
    if (n.opType !== 'Conv' || exclude.has(nodeKey(n)) || !ownWeights(model, info, n)) continue;
    let frontier = [n.outputs[0]];
    let hardSwish = false;
    for (let hops = 0; hops < 3 && !hardSwish && frontier.length > 0; hops++) {
      const next: string[] = [];
      for (const t of frontier) {
        for (const c of info.consumers.get(t) ?? []) {
          if (c.opType === 'Transpose') next.push(c.outputs[0]);
          else if (c.opType === 'Add' && c.inputs.some((i) => i !== t && isScalarConst(model, i))) hardSwish = true;
        }
      }
      frontier = next;
    }
    if (hardSwish) seeds.push(n);
  }
  return seeds;
}

/**
 * Residual streams: for every Add of two computed tensors (a MobileNet block's skip connection), the
 * region that must carry one factor through it. Returned as the Add nodes; rescale plans each.
 */
export function findResidualAdds(model: OnnxModel, exclude: Set<string> = new Set()): OnnxNode[] {
  return model.graph.nodes.filter((n) => n.opType === 'Add' && !exclude.has(nodeKey(n)) && n.inputs.length === 2 && n.inputs.every((i) => !model.graph.initializers.has(i)));
}

/** The Conv behind `tensor` through Transposes, Adds and per-channel Muls (the first one found). */
function convBehind(model: OnnxModel, info: GraphInfo, tensor: string, depth = 0): OnnxNode | undefined {
  const p = info.producer.get(tensor);
  if (!p || depth > 8) return undefined;
  if (p.opType === 'Conv') return p;
  if (p.opType === 'Transpose' || p.opType === 'Add' || p.opType === 'Mul') {
    for (const i of p.inputs) { const c = model.graph.initializers.has(i) ? undefined : convBehind(model, info, i, depth + 1); if (c) return c; }
  }
  return undefined;
}

/** Broadcast shape of a per-channel constant for a rank-4 tensor whose channels are on `axis`. */
function channelShape(c: number, axis: number): number[] {
  return [c, ...new Array<number>(3 - axis).fill(1)];
}

/** Applies one planned region with factors k (mutates `model`). */
function applyRegion(model: OnnxModel, region: RescaleRegion, k: Float64Array): void {
  const g = model.graph;
  const C = k.length;
  for (const p of region.producers) {
    if (p.kind === 'mul') {
      const ci = p.node.inputs.findIndex((i) => g.initializers.get(i)?.dims[0] === C && g.initializers.get(i)?.dataType === DataType.FLOAT);
      const t = g.initializers.get(p.node.inputs[ci])!;
      const v = tensorToFloat32(t);
      for (let c = 0; c < C; c++) v[c] *= k[c];
      g.initializers.set(p.node.inputs[ci], floatTensor(t.dims, v));
      continue;
    }
    const w = g.initializers.get(p.node.inputs[1])!;
    const W = tensorToFloat32(w);
    const per = W.length / C;
    for (let c = 0; c < C; c++) for (let j = 0; j < per; j++) W[c * per + j] *= k[c];
    g.initializers.set(p.node.inputs[1], floatTensor(w.dims, W));
    if (p.node.inputs[2]) {
      const b = tensorToFloat32(g.initializers.get(p.node.inputs[2])!);
      for (let c = 0; c < C; c++) b[c] *= k[c];
      g.initializers.set(p.node.inputs[2], floatTensor([C], b));
    }
  }
  for (const a of region.absorbers) {
    const w = g.initializers.get(a.node.inputs[1])!;
    const W = tensorToFloat32(w);
    const per = w.dims[2] * w.dims[3];
    if (a.depthwise) {
      for (let c = 0; c < C; c++) for (let j = 0; j < per; j++) W[c * per + j] /= k[c];
    } else {
      const cin = w.dims[1];
      for (let o = 0; o < w.dims[0]; o++) for (let c = 0; c < cin; c++) for (let j = 0; j < per; j++) W[(o * cin + c) * per + j] /= k[c];
    }
    g.initializers.set(a.node.inputs[1], floatTensor(w.dims, W));
  }
  const inverse = new Map<string, string>();
  const added: OnnxNode[] = [];
  const info = analyzeGraph(g);
  const removed = new Set<OnnxNode>();
  for (const u of region.unscaled) {
    if (rewriteGate(model, info, region, u, k, added, removed)) continue;
    let out = inverse.get(u.tensor);
    if (!out) {
      out = `${u.tensor}/~unscaled`;
      const inv = `${out}/k`;
      g.initializers.set(inv, floatTensor(channelShape(C, u.axis), Array.from(k, (v) => 1 / v)));
      added.push({ opType: 'Mul', name: `${out}/Mul`, inputs: [u.tensor, inv], outputs: [out], attributes: [] });
      inverse.set(u.tensor, out);
    }
    u.consumer.inputs = u.consumer.inputs.map((i) => (i === u.tensor ? out! : i));
  }
  if (removed.size > 0) {
    g.nodes = g.nodes.filter((n) => !removed.has(n));
    // Constants only the removed Adds and Clips read (hard-swish's 3) go with them.
    const used = new Set([...g.nodes, ...added].flatMap((n) => n.inputs));
    for (const n of removed) for (const i of n.inputs) if (g.initializers.has(i) && !used.has(i)) g.initializers.delete(i);
  }
  // Each new node goes right after its first input's producer (in dependency order), which keeps the
  // node list topologically sorted.
  for (const m of added) {
    const at = g.nodes.findIndex((n) => n.outputs.includes(m.inputs[0]));
    g.nodes.splice(at + 1, 0, m);
  }
}

/**
 * Hard-swish's gate relu6(x + 3) from the scaled x' = k·x as one depthwise 1×1 Conv (weights 1/k, bias
 * 3) and its Clip, computed on the NCHW tensor the Transpose to x' came from; a Transpose gives the
 * gate back in the layout the Clip had. Both INT8 builders fold the Clip into the Conv's output, so
 * the only rounded tensor is the gate itself, in [0, 6]. Undoing the scale with a Mul instead rounds
 * x = x'/k again, with the unbalanced channels this rescaling exists to avoid: measured, that Mul's
 * output and the Add after it were the two worst activations left in the CenterNet (21 dB each).
 */
function rewriteGate(model: OnnxModel, info: GraphInfo, region: RescaleRegion, u: RescaleRegion['unscaled'][number], k: Float64Array, added: OnnxNode[], removed: Set<OnnxNode>): boolean {
  const g = model.graph;
  const add = u.consumer;
  if (add.opType !== 'Add' || removed.has(add)) return false;
  const constName = add.inputs[0] === u.tensor ? add.inputs[1] : add.inputs[0];
  if (!isScalarConst(model, constName) || g.initializers.get(constName)?.dataType !== DataType.FLOAT) return false;
  const clips = info.consumers.get(add.outputs[0]) ?? [];
  const clip = clips[0];
  if (clips.length !== 1 || clip.opType !== 'Clip' || info.graphOutputs.has(add.outputs[0])) return false;
  // The NCHW tensor behind the NHWC one: the input of the Transpose that made it.
  const tr = info.producer.get(u.tensor);
  const perm = tr ? intsAttr(tr, 'perm') : undefined;
  let src: string | undefined;
  if (u.axis === 1) src = u.tensor;
  else if (tr?.opType === 'Transpose' && u.axis === 3 && perm?.join() === '0,2,3,1' && region.tensors.get(tr.inputs[0]) === 1) src = tr.inputs[0];
  if (!src) return false;
  const C = k.length;
  const c3 = tensorToFloat32(g.initializers.get(constName)!)[0];
  const base = `${add.outputs[0]}/~gate`;
  g.initializers.set(`${base}/w`, floatTensor([C, 1, 1, 1], Array.from(k, (v) => 1 / v)));
  g.initializers.set(`${base}/b`, floatTensor([C], new Array<number>(C).fill(c3)));
  const conv: OnnxNode = { opType: 'Conv', name: `${base}/Conv`, inputs: [src, `${base}/w`, `${base}/b`], outputs: [`${base}/conv`], attributes: [{ name: 'group', type: 'int', value: C }, { name: 'kernel_shape', type: 'ints', value: [1, 1] }] };
  const newClip: OnnxNode = { ...clip, name: `${base}/Clip`, inputs: [`${base}/conv`, ...clip.inputs.slice(1)], outputs: [u.axis === 1 ? clip.outputs[0] : `${base}/clip`] };
  added.push(conv, newClip);
  if (u.axis !== 1) added.push({ opType: 'Transpose', name: `${base}/Transpose`, inputs: [`${base}/clip`], outputs: [clip.outputs[0]], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] });
  removed.add(add);
  removed.add(clip);
  return true;
}

/** Per-channel factors from calibrated maxima: (max/a_c)^α, capped; channels that never fire keep 1. */
function factors(act: Float64Array, alpha: number, maxFactor: number): Float64Array {
  const amax = Math.max(...act);
  return Float64Array.from(act, (a) => (amax > 0 && a > amax * 1e-6 ? Math.min(maxFactor, (amax / a) ** alpha) : 1));
}

export interface RescaleOptions {
  maxFactor?: number;
}

/**
 * Rescales every hard-swish seed (`channelMax`: calibrated per-channel |x| maxima of each seed's
 * output, NCHW) on a copy of the model. Regions are planned on the copy, in order, so an earlier
 * region's inserted Muls are seen by the later ones.
 */
export function rescale(source: OnnxModel, seeds: OnnxNode[], channelMax: Map<string, Float64Array>, opts: RescaleOptions = {}): { model: OnnxModel; regions: RescaleRegion[] } {
  const model = cloneModel(source);
  const byOutput = new Map(model.graph.nodes.map((n) => [n.outputs[0], n]));
  const regions: RescaleRegion[] = [];
  for (const s of seeds) {
    const seed = byOutput.get(s.outputs[0]);
    const act = channelMax.get(s.outputs[0]);
    if (!seed || !act) continue;
    const region = planRescale(model, [seed], { throughAdds: false });
    if (!region || act.length !== model.graph.initializers.get(seed.inputs[1])?.dims[0]) continue;
    applyRegion(model, region, factors(act, region.absorbers.every((a) => a.depthwise) ? 1 : 0.5, opts.maxFactor ?? 1000));
    regions.push(region);
  }
  return { model, regions };
}

/**
 * The residual regions of a model as planned (for calibration: which tensors to measure per channel).
 */
export function planResiduals(model: OnnxModel, adds: OnnxNode[]): RescaleRegion[] {
  const info = analyzeGraph(model.graph);
  const regions: RescaleRegion[] = [];
  const covered = new Set<string>();
  for (const a of adds) {
    if (covered.has(a.outputs[0])) continue;
    const conv = convBehind(model, info, a.outputs[0]);
    if (!conv) continue;
    const region = planRescale(model, [conv], { throughAdds: true }, info);
    if (!region || !region.tensors.has(a.outputs[0])) continue;
    for (const t of region.tensors.keys()) covered.add(t);
    regions.push(region);
  }
  return regions;
}

/**
 * Balances residual streams: each region's factor comes from the per-channel maxima of the Add outputs
 * in it (the sums the next blocks read), α = 0.5 since 1×1 Convs absorb it.
 */
export function rescaleResiduals(source: OnnxModel, regions: RescaleRegion[], channelMax: Map<string, Float64Array>, opts: RescaleOptions = {}): { model: OnnxModel; regions: number } {
  const model = cloneModel(source);
  const byOutput = new Map(model.graph.nodes.map((n) => [n.outputs[0], n]));
  let applied = 0;
  for (const r of regions) {
    const sums = [...r.tensors.keys()].filter((t) => byOutput.get(t)?.opType === 'Add').map((t) => channelMax.get(t)).filter((x): x is Float64Array => x !== undefined);
    if (sums.length === 0) continue;
    // Each tensor normalized to its own maximum, then the largest share per channel.
    const C = sums[0].length;
    const share = new Float64Array(C);
    for (const s of sums) { const m = Math.max(...s); if (m > 0) for (let c = 0; c < C; c++) share[c] = Math.max(share[c], s[c] / m); }
    // Re-plan on the copy (earlier regions' changes are in it) with the same starting Conv.
    const start = byOutput.get(r.producers.find((p) => p.kind === 'conv')!.node.outputs[0]);
    if (!start) continue;
    const again = planRescale(model, [start], { throughAdds: true });
    if (!again) continue;
    applyRegion(model, again, factors(share, 0.5, opts.maxFactor ?? 1000));
    applied++;
  }
  return { model, regions: applied };
}
