/**
 * Small graph clean-ups on the in-memory ONNX model, used after import and reusable by later passes.
 */
import { floatTensor, int64Tensor, intsAttr, type OnnxGraph, type OnnxNode, type OnnxTensor } from './model.js';

const permOf = (n: OnnxNode): number[] | undefined => intsAttr(n, 'perm');

/** Renames every use of value `from` to `to` (node inputs and graph outputs keep their own names). */
function replaceUses(g: OnnxGraph, from: string, to: string): void {
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
}

/**
 * Removes Transpose(perm2)∘Transpose(perm1) pairs whose composition is the identity: consumers of
 * the second read the first's input instead. A pair that ends at a graph output becomes an Identity.
 * Returns how many pairs were removed.
 */
export function cancelTransposes(g: OnnxGraph): number {
  const producer = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  let removed = 0;
  for (const n of g.nodes) {
    if (n.opType !== 'Transpose') continue;
    const first = producer.get(n.inputs[0]);
    if (first?.opType !== 'Transpose') continue;
    const p1 = permOf(first); const p2 = permOf(n);
    if (!p1 || !p2 || p1.length !== p2.length) continue;
    // out[i] = in[p1[p2[i]]]; identity when p1[p2[i]] === i for all i.
    if (!p2.every((p, i) => p1[p] === i)) continue;
    const src = first.inputs[0];
    const out = n.outputs[0];
    if (graphOutputs.has(out)) {
      n.opType = 'Identity'; n.inputs = [src]; n.attributes = [];
    } else {
      replaceUses(g, out, src);
    }
    removed++;
  }
  removeDeadNodes(g);
  return removed;
}

/** Drops nodes none of whose outputs are read (by a node or as a graph output) and unused initializers. */
export function removeDeadNodes(g: OnnxGraph): void {
  for (;;) {
    const read = new Set<string>(g.outputs.map((o) => o.name));
    for (const n of g.nodes) for (const i of n.inputs) read.add(i);
    const before = g.nodes.length;
    g.nodes = g.nodes.filter((n) => n.outputs.some((o) => read.has(o)));
    if (g.nodes.length === before) {
      for (const name of [...g.initializers.keys()]) if (!read.has(name)) g.initializers.delete(name);
      return;
    }
  }
}

/** The tensor a Constant node holds (ONNX Constant: exactly one of value, value_float(s), value_int(s)); undefined for strings and sparse values. */
function constantValue(n: OnnxNode): OnnxTensor | undefined {
  const a = n.attributes[0];
  if (n.attributes.length !== 1 || !a) return undefined;
  switch (a.name) {
    case 'value': return a.type === 'tensor' ? a.value : undefined;
    case 'value_float': return a.type === 'float' ? floatTensor([], [a.value]) : undefined;
    case 'value_floats': return a.type === 'floats' ? floatTensor([a.value.length], a.value) : undefined;
    case 'value_int': return a.type === 'int' ? int64Tensor([], [a.value]) : undefined;
    case 'value_ints': return a.type === 'ints' ? int64Tensor([a.value.length], a.value) : undefined;
    default: return undefined;
  }
}

/**
 * Turns the graph's Constant nodes into initializers of the same names (exact). Exporters such as
 * paddle2onnx give every Conv weight, bias and Clip bound as a Constant node; the INT8 pipeline finds
 * weights among the initializers, and found none in such a graph. A Constant whose output is a graph
 * output, or that holds strings, stays a node. Returns how many were folded.
 */
export function constantsToInitializers(g: OnnxGraph): number {
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  let folded = 0;
  g.nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Constant' || ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx')) return true;
    const out = n.outputs[0];
    const value = constantValue(n);
    if (!out || !value || graphOutputs.has(out) || g.initializers.has(out)) return true;
    g.initializers.set(out, value);
    folded++;
    return false;
  });
  return folded;
}

/**
 * Gives every value that is not a graph input or output a short name (base 36, in first-use order)
 * and drops the names of the nodes `dropName` picks: for a file shipped to boxes, not read by people.
 * TensorFlow-style value names ("tower_0/MobilenetV3/expanded_conv_3/...") are tens of bytes each,
 * written once by the producer and once per reader (the INT8 CenterNet: 0.8% of its FP32 size, in a
 * file whose goal is 27% of it). A graph with subgraphs (If, Loop, Scan: their bodies read outer
 * names) or with fields this codec keeps verbatim (quantization_annotation names values) is left as it
 * is. Returns how many values were renamed.
 */
export function compactNames(g: OnnxGraph, dropName: (n: OnnxNode) => boolean = () => false): number {
  if (g.unknownFields?.length || g.nodes.some((n) => n.attributes.some((a) => a.type === 'graph'))) return 0;
  const keep = new Set([...g.inputs, ...g.outputs].map((v) => v.name));
  const names = new Map<string, string>();
  let next = 0;
  const short = (v: string): string => {
    if (v === '' || keep.has(v)) return v;
    let s = names.get(v);
    if (s === undefined) {
      // A generated name never collides with a kept one: skip any that a graph input or output has.
      do s = (next++).toString(36); while (keep.has(s));
      names.set(v, s);
    }
    return s;
  };
  for (const n of g.nodes) {
    n.inputs = n.inputs.map(short);
    n.outputs = n.outputs.map(short);
    if (dropName(n)) n.name = '';
  }
  const inits = new Map<string, OnnxTensor>();
  for (const [name, t] of g.initializers) inits.set(short(name), t);
  g.initializers = inits;
  g.valueInfo = g.valueInfo.map((v) => ({ ...v, name: short(v.name) }));
  return names.size;
}
