/**
 * ReduceMean over the two spatial axes of a 4-D feature map → GlobalAveragePool, before the QDQ build.
 *
 * The same arithmetic, but onnxruntime runs them very differently once quantized: Q/DQ around a
 * GlobalAveragePool fuse into QLinearGlobalAveragePool (its QDQ rules cover the op, ReduceMean they do
 * not), while a float ReduceMean stays between a DequantizeLinear and a QuantizeLinear and, on the
 * NHWC layout ORT gives QLinearConv, reduces strided memory: the CenterNet's nine squeeze-excite and
 * head means took 4.6 of 55 ms in the INT8 model against 0.5 ms in FP32 (ORT 1.30, x86, profiled).
 *
 * NCHW means (axes 2,3) become the pool itself. NHWC means (axes 1,2: models converted from
 * TensorFlow) become Transpose → GlobalAveragePool → Transpose, which ORT's transpose optimizer
 * cancels against the Transposes the converter left around every Conv. Only where the input is
 * known to be 4-D (reached from a 2-D Conv through shape-keeping ops) and keepdims is 1.
 */
import { attr, intsAttr, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { analyzeGraph, type GraphInfo } from './graph-info.js';

/** Ops whose output has the rank of their first input. */
const SAME_RANK = new Set(['Relu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Identity', 'BatchNormalization', 'Resize', 'MaxPool', 'AveragePool']);

function isRank4(model: OnnxModel, info: GraphInfo, tensor: string, memo: Map<string, boolean>, depth = 0): boolean {
  let known = memo.get(tensor);
  if (known === undefined) {
    known = rank4(model, info, tensor, memo, depth);
    memo.set(tensor, known);
  }
  return known;
}

function rank4(model: OnnxModel, info: GraphInfo, tensor: string, memo: Map<string, boolean>, depth: number): boolean {
  const p = info.producer.get(tensor);
  if (!p || depth > 32) return false;
  if (p.opType === 'Conv') return model.graph.initializers.get(p.inputs[1])?.dims.length === 4;
  if (p.opType === 'Transpose') return intsAttr(p, 'perm')?.length === 4;
  if (SAME_RANK.has(p.opType)) return isRank4(model, info, p.inputs[0], memo, depth + 1);
  // Concat's inputs all have the output's rank.
  if (p.opType === 'Concat') return p.inputs.some((i) => !model.graph.initializers.has(i) && isRank4(model, info, i, memo, depth + 1));
  if (p.opType === 'Mul' || p.opType === 'Add') {
    // Broadcasting: the output has the largest rank; a constant operand must not add dimensions.
    const consts = p.inputs.filter((i) => model.graph.initializers.has(i));
    if (consts.some((c) => model.graph.initializers.get(c)!.dims.length > 4)) return false;
    return p.inputs.some((i) => !model.graph.initializers.has(i) && isRank4(model, info, i, memo, depth + 1));
  }
  return false;
}

/** The spatial layout a ReduceMean averages over, or undefined when it is not a global pool. */
function spatialLayout(n: OnnxNode): 'nchw' | 'nhwc' | undefined {
  const keep = attr(n, 'keepdims');
  if (keep?.type === 'int' && keep.value === 0) return undefined;
  // Opset 18 moved axes to an input; those are left alone (the sample models are opset 12-17).
  if (n.inputs.length > 1) return undefined;
  const axes = intsAttr(n, 'axes')?.map((a) => (a + 4) % 4).sort();
  if (axes?.length !== 2) return undefined;
  if (axes[0] === 2 && axes[1] === 3) return 'nchw';
  if (axes[0] === 1 && axes[1] === 2) return 'nhwc';
  return undefined;
}

/** Rewrites in place; returns how many ReduceMeans became pools. Node names are kept for --exclude. */
export function spatialMeansToGlobalPool(model: OnnxModel): number {
  const info = analyzeGraph(model.graph);
  const memo = new Map<string, boolean>();
  let count = 0;
  model.graph.nodes = model.graph.nodes.flatMap((n) => {
    const layout = n.opType === 'ReduceMean' ? spatialLayout(n) : undefined;
    if (!layout || !isRank4(model, info, n.inputs[0], memo)) return [n];
    count++;
    const name = n.name || n.outputs[0];
    if (layout === 'nchw') return [{ opType: 'GlobalAveragePool', name, inputs: [n.inputs[0]], outputs: n.outputs, attributes: [] }];
    return [
      { opType: 'Transpose', name: `${name}/~nchw`, inputs: [n.inputs[0]], outputs: [`${name}/~nchw`], attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }] },
      { opType: 'GlobalAveragePool', name, inputs: [`${name}/~nchw`], outputs: [`${name}/~pool`], attributes: [] },
      { opType: 'Transpose', name: `${name}/~nhwc`, inputs: [`${name}/~pool`], outputs: n.outputs, attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
    ];
  });
  return count;
}
