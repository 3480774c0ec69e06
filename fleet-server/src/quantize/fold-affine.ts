/**
 * Folds the affine ops that follow a Conv into the Conv's weights and bias, before anything is
 * measured (prepare.ts). Exact in float up to rounding. Exporters other than ours leave them apart:
 * paddle2onnx keeps a stem's BatchNormalization, and PP-LCNetV3 (the backbone of the PP-OCRv4 text
 * detector) follows nearly every Conv with a "learnable affine block", y = a·conv(x) + b with scalar
 * a and b. Apart, each of them is one more tensor rounded to 8 bits, and the scalar Add hides the
 * hard-swish behind it from the rescaling (rescale.ts looks for a Conv followed by an Add of a
 * constant). Also a Div by a scalar constant becomes a Mul by its reciprocal (hard-swish's /6 in the
 * same exports), the form the rescaling carries its factor through.
 *
 * BatchNormalization (inference form, ONNX operator spec): y = scale·(x − mean)/√(var + ε) + B, so
 * per output channel c: W_c ← W_c·f_c, bias_c ← (bias_c − mean_c)·f_c + B_c with f_c = scale_c/√(var_c + ε).
 */
import { DataType, attr, floatTensor, tensorToFloat32, type OnnxModel, type OnnxNode, type OnnxTensor } from '../convert/onnx/model.js';
import { analyzeGraph, nodeKey } from './graph-info.js';
import { cloneModel } from './qdq.js';

export interface AffineFoldReport {
  batchNorms: number;
  /** Scalar Muls (with the scalar Add after them, when there is one) folded into the Conv before them. */
  scalarAffines: number;
  /** Divs by a scalar constant turned into Muls. */
  divisions: number;
}

/** The value of a float constant holding one element, of rank ≤ 4 (so a Conv output times it keeps its rank). */
function scalarOf(inits: Map<string, OnnxTensor>, name: string): number | undefined {
  const t = inits.get(name);
  if (t?.dataType !== DataType.FLOAT || t.dims.length > 4 || t.dims.reduce((a, b) => a * b, 1) !== 1) return undefined;
  return tensorToFloat32(t)[0];
}

/** Nodes named in `exclude` (by nodeKey, as --exclude resolves them) are neither folded nor folded into. */
export function foldAffineIntoConvs(source: OnnxModel, exclude: ReadonlySet<string> = new Set()): { model: OnnxModel; report: AffineFoldReport } {
  const model = cloneModel(source);
  const g = model.graph;
  const report: AffineFoldReport = { batchNorms: 0, scalarAffines: 0, divisions: 0 };
  // Initializers this pass may leave unread: dropped at the end if no node reads them any more.
  const released = new Set<string>();
  const freshName = (base: string): string => {
    let name = base;
    for (let k = 2; g.initializers.has(name); k++) name = `${base}~${k}`;
    return name;
  };
  for (const n of g.nodes) {
    const d = n.opType === 'Div' && !exclude.has(nodeKey(n)) ? scalarOf(g.initializers, n.inputs[1]) : undefined;
    if (d === undefined || d === 0) continue;
    const divisor = g.initializers.get(n.inputs[1])!;
    const name = freshName(`${n.inputs[1]}~reciprocal`);
    // The divisor's own shape: a [1, 1, 1, 1] divisor broadcasts the output to rank 4, and so must its reciprocal.
    g.initializers.set(name, floatTensor(divisor.dims, [1 / d]));
    released.add(n.inputs[1]);
    n.opType = 'Mul';
    n.inputs = [n.inputs[0], name];
    report.divisions++;
  }
  const removed = new Set<OnnxNode>();
  let info = analyzeGraph(g);
  /** The only reader of `tensor`, when there is exactly one, not excluded, and the value is not a graph output. */
  const soleReader = (tensor: string): OnnxNode | undefined => {
    const cs = info.consumers.get(tensor) ?? [];
    return cs.length === 1 && !info.graphOutputs.has(tensor) && !exclude.has(nodeKey(cs[0])) ? cs[0] : undefined;
  };
  for (const conv of g.nodes) {
    if (conv.opType !== 'Conv' || exclude.has(nodeKey(conv))) continue;
    const w = g.initializers.get(conv.inputs[1]);
    const b = conv.inputs[2] ? g.initializers.get(conv.inputs[2]) : undefined;
    if (w?.dataType !== DataType.FLOAT || w.dims.length !== 4 || (conv.inputs[2] && b?.dataType !== DataType.FLOAT)) continue;
    // Weights another node reads too cannot change in place.
    if ((info.consumers.get(conv.inputs[1]) ?? []).length !== 1 || (conv.inputs[2] && (info.consumers.get(conv.inputs[2]) ?? []).length !== 1)) continue;
    const C = w.dims[0], per = w.dims[1] * w.dims[2] * w.dims[3];
    let W: Float32Array | undefined, B: Float32Array | undefined;
    const load = (): [Float32Array, Float32Array] => [W ??= tensorToFloat32(w), B ??= b ? tensorToFloat32(b) : new Float32Array(C)];
    for (;;) {
      const next = soleReader(conv.outputs[0]);
      if (!next) break;
      let absorbed: OnnxNode[];
      if (next.opType === 'BatchNormalization' && next.inputs.length === 5 && next.outputs.length === 1) {
        // training_mode = 1 (opset 14) normalizes with the batch's own statistics, not the stored ones.
        const training = attr(next, 'training_mode');
        if (training?.type === 'int' && training.value !== 0) break;
        const p = next.inputs.slice(1).map((i) => g.initializers.get(i));
        if (p.some((t) => t?.dataType !== DataType.FLOAT || t.dims.length !== 1 || t.dims[0] !== C)) break;
        const [scale, bias, mean, variance] = p.map((t) => tensorToFloat32(t!));
        const e = attr(next, 'epsilon');
        const eps = e?.type === 'float' ? e.value : 1e-5;
        const [Wv, Bv] = load();
        for (let c = 0; c < C; c++) {
          const f = scale[c] / Math.sqrt(variance[c] + eps);
          for (let i = 0; i < per; i++) Wv[c * per + i] *= f;
          Bv[c] = (Bv[c] - mean[c]) * f + bias[c];
        }
        absorbed = [next];
        report.batchNorms++;
      } else if (next.opType === 'Mul') {
        const a = scalarOf(g.initializers, next.inputs[0] === conv.outputs[0] ? next.inputs[1] : next.inputs[0]);
        if (a === undefined || next.inputs[0] === next.inputs[1]) break;
        const [Wv, Bv] = load();
        for (let i = 0; i < Wv.length; i++) Wv[i] *= a;
        for (let c = 0; c < C; c++) Bv[c] *= a;
        absorbed = [next];
        const add = soleReader(next.outputs[0]);
        const k = add?.opType === 'Add' && add.inputs[0] !== add.inputs[1] ? scalarOf(g.initializers, add.inputs[0] === next.outputs[0] ? add.inputs[1] : add.inputs[0]) : undefined;
        if (add && k !== undefined) {
          for (let c = 0; c < C; c++) Bv[c] += k;
          absorbed.push(add);
        }
        report.scalarAffines++;
      } else {
        break;
      }
      // The Conv now writes what the last absorbed node wrote; its readers are unchanged.
      conv.outputs = [absorbed[absorbed.length - 1].outputs[0]];
      for (const x of absorbed) {
        removed.add(x);
        for (const i of x.inputs) if (g.initializers.has(i)) released.add(i);
      }
      info = analyzeGraph({ ...g, nodes: g.nodes.filter((x) => !removed.has(x)) });
    }
    if (W && B) {
      const wName = freshName(`${conv.inputs[1]}~folded`), bName = freshName(`${conv.inputs[2] || conv.name || conv.outputs[0]}~bias-folded`);
      released.add(conv.inputs[1]);
      if (conv.inputs[2]) released.add(conv.inputs[2]);
      g.initializers.set(wName, floatTensor(w.dims, W));
      g.initializers.set(bName, floatTensor([C], B));
      conv.inputs = [conv.inputs[0], wName, bName];
    }
  }
  g.nodes = g.nodes.filter((x) => !removed.has(x));
  // Only what this pass stopped reading, and only where no subgraph (If, Loop) could still read it.
  const read = new Set(g.nodes.flatMap((x) => x.inputs));
  const subgraphs = g.nodes.some((x) => x.attributes.some((a) => a.type === 'graph'));
  if (!subgraphs) {
    for (const name of released) if (!read.has(name) && !g.inputs.some((i) => i.name === name) && !g.outputs.some((o) => o.name === name)) g.initializers.delete(name);
  }
  return { model, report };
}
