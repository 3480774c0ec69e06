/**
 * Facts about an ONNX graph the quantizer needs and the codec does not keep: the element type of
 * every value (propagated forward from inputs, initializers and the few ops that change type),
 * producers and consumers, and which nodes form the float "head" (decoding after the last Conv).
 */
import { DataType, attr, type OnnxGraph, type OnnxNode } from '../convert/onnx/model.js';

/** Ops whose outputs are not of their first input's type. */
function outputTypes(n: OnnxNode, typeOf: (v: string) => number): number[] {
  const first = typeOf(n.inputs[0] ?? '');
  switch (n.opType) {
    case 'Cast': { const to = attr(n, 'to'); return [to?.type === 'int' ? to.value : 0]; }
    case 'Shape': case 'Size': case 'ArgMax': case 'ArgMin': case 'NonZero': return [DataType.INT64];
    case 'Equal': case 'Greater': case 'Less': case 'GreaterOrEqual': case 'LessOrEqual': case 'Not': case 'And': case 'Or': case 'Xor': case 'IsNaN': case 'IsInf':
      return [DataType.BOOL];
    case 'TopK': return [first, DataType.INT64];
    case 'MaxPool': return [first, DataType.INT64];
    case 'Constant': { const v = attr(n, 'value'); return [v?.type === 'tensor' ? v.value.dataType : DataType.FLOAT]; }
    case 'ConstantOfShape': { const v = attr(n, 'value'); return [v?.type === 'tensor' ? v.value.dataType : DataType.FLOAT]; }
    case 'Where': return [typeOf(n.inputs[1] ?? '')];
    case 'QuantizeLinear': return [typeOf(n.inputs[2] ?? '') || DataType.UINT8];
    case 'DequantizeLinear': return [DataType.FLOAT];
    default: return n.outputs.map(() => first);
  }
}

export interface GraphInfo {
  elemType: Map<string, number>;
  producer: Map<string, OnnxNode>;
  consumers: Map<string, OnnxNode[]>;
  graphOutputs: Set<string>;
}

export function analyzeGraph(g: OnnxGraph): GraphInfo {
  const elemType = new Map<string, number>();
  for (const i of g.inputs) elemType.set(i.name, i.elemType);
  for (const [name, t] of g.initializers) elemType.set(name, t.dataType);
  for (const v of g.valueInfo) if (v.elemType) elemType.set(v.name, v.elemType);
  const producer = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of g.nodes) {
    const types = outputTypes(n, (v) => elemType.get(v) ?? 0);
    n.outputs.forEach((o, k) => { if (o && !elemType.has(o)) elemType.set(o, types[k] ?? 0); producer.set(o, n); });
    for (const i of n.inputs) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(n); else consumers.set(i, [n]);
    }
  }
  return { elemType, producer, consumers, graphOutputs: new Set(g.outputs.map((o) => o.name)) };
}

const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);

/**
 * The head: nodes from which no Conv/MatMul/Gemm can be reached (post-processing such as sigmoid,
 * max-pool peak picking, TopK, box arithmetic). Left in float by default: quantizing decoding math
 * costs accuracy and gains nothing.
 */
export function headNodes(g: OnnxGraph, info: GraphInfo): Set<string> {
  const feedsWeighted = new Set<OnnxNode>();
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k];
    const reaches = n.outputs.some((o) => (info.consumers.get(o) ?? []).some((c) => WEIGHTED.has(c.opType) || feedsWeighted.has(c)));
    if (reaches) feedsWeighted.add(n);
  }
  const head = new Set<string>();
  for (const n of g.nodes) if (!feedsWeighted.has(n) && !WEIGHTED.has(n.opType)) head.add(nodeKey(n));
  return head;
}

/** A node's name, or its first output when it has none (the imported models name every node, others may not). */
export function nodeKey(n: OnnxNode): string {
  return n.name || n.outputs[0];
}
