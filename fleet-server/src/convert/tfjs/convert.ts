/**
 * TF.js graph model → in-memory ONNX model (opset 17, IR version 8). Only the nodes that the outputs
 * depend on are converted, in dependency order. Every op type without a mapper is collected first so
 * that one error lists them all.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { emptyGraph, type OnnxDim, type OnnxModel } from '../onnx/model.js';
import { cancelTransposes } from '../onnx/passes.js';
import { ConvertContext, attrShape, attrType, onnxTypeOf } from './context.js';
import { OP_MAPPERS } from './ops.js';
import { parseRef, type TfjsGraphModel, type TfNode } from './reader.js';

/** Bumped whenever the converter's output changes, so prepared models are re-imported. */
export const TFJS_IMPORTER_VERSION = '1';
export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export class UnmappedOpsError extends ModelError {
  constructor(readonly unmapped: { op: string; node: string; count: number }[]) {
    super(`The TF.js model uses ${unmapped.length} op type${unmapped.length > 1 ? 's' : ''} that the ONNX importer does not map: ` +
      `${unmapped.map((u) => `${u.op} (node "${u.node}"${u.count > 1 ? ` and ${u.count - 1} more` : ''})`).join(', ')}. ` +
      'Add a mapper in fleet-server/src/convert/tfjs/ops.ts, or export the model from TensorFlow without these ops.');
  }
}

export interface ConvertStats {
  tfNodes: number;
  onnxNodes: number;
  initializers: number;
  transposePairsRemoved: number;
}

export function convertTfjsToOnnx(model: TfjsGraphModel, opts: { graphName?: string; producerVersion?: string } = {}): { model: OnnxModel; stats: ConvertStats } {
  const byName = new Map(model.nodes.map((n) => [n.name, n]));
  const order = dependencyOrder(model, byName);

  const unmapped = new Map<string, { op: string; node: string; count: number }>();
  for (const n of order) {
    if (n.op === 'Const' || n.op === 'Placeholder' || OP_MAPPERS[n.op]) continue;
    const u = unmapped.get(n.op);
    if (u) u.count++;
    else unmapped.set(n.op, { op: n.op, node: n.name, count: 1 });
  }
  if (unmapped.size) throw new UnmappedOpsError([...unmapped.values()]);

  const aliases = new Map<string, string>();
  for (const s of [...model.inputs, ...model.outputs]) aliases.set(`${s.node}:${s.index}`, s.key);
  const graph = emptyGraph(opts.graphName ?? 'tfjs');
  const ctx = new ConvertContext(graph, byName, model.weights, aliases);

  for (const sig of model.inputs) {
    const n = byName.get(sig.node);
    if (!n) throw new ModelError(`The signature names input "${sig.key}" but the graph has no node "${sig.node}"`);
    const shape = sig.shape ?? attrShape(n, 'shape');
    graph.inputs.push({ name: sig.key, elemType: onnxTypeOf(attrType(n, 'dtype') ?? sig.dtype), shape: shape?.map(toDim) });
  }
  for (const n of order) {
    if (n.op === 'Const' || n.op === 'Placeholder') continue;
    OP_MAPPERS[n.op](n, ctx);
  }
  for (const sig of model.outputs) {
    graph.outputs.push({ name: sig.key, elemType: onnxTypeOf(sig.dtype), shape: sig.shape?.map(toDim) });
    // A graph output that is a constant, or is another graph input, needs a node to produce it.
    const produced = graph.nodes.some((nd) => nd.outputs.includes(sig.key));
    if (!produced) ctx.add('Identity', [ctx.input(sig.index ? `${sig.node}:${sig.index}` : sig.node)], [sig.key]);
  }
  const transposePairsRemoved = cancelTransposes(graph);
  return {
    model: {
      irVersion: ONNX_IR_VERSION,
      opsetImports: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'edge-fleet tfjs-import',
      producerVersion: opts.producerVersion ?? TFJS_IMPORTER_VERSION,
      metadataProps: { 'edge-fleet.importer': `tfjs@${TFJS_IMPORTER_VERSION}` },
      graph,
    },
    stats: { tfNodes: order.length, onnxNodes: graph.nodes.length, initializers: graph.initializers.size, transposePairsRemoved },
  };
}

function toDim(d: number): OnnxDim {
  return d >= 0 ? d : null;
}

/** Nodes the outputs depend on, each after its inputs (iterative DFS; TF graphs have no cycles without control flow). */
function dependencyOrder(model: TfjsGraphModel, byName: Map<string, TfNode>): TfNode[] {
  const out: TfNode[] = [];
  const state = new Map<string, 1 | 2>();
  for (const root of model.outputs) {
    const stack: { name: string; expanded: boolean }[] = [{ name: root.node, expanded: false }];
    while (stack.length) {
      const top = stack.pop()!;
      const node = byName.get(top.name);
      if (!node) throw new ModelError(`Node "${top.name}" is referenced but not defined in the TF.js graph; model.json is incomplete`);
      if (top.expanded) {
        if (state.get(top.name) !== 2) { state.set(top.name, 2); out.push(node); }
        continue;
      }
      if (state.has(top.name)) continue;
      state.set(top.name, 1);
      stack.push({ name: top.name, expanded: true });
      for (const ref of node.input ?? []) {
        const dep = parseRef(ref).node;
        if (!state.has(dep)) stack.push({ name: dep, expanded: false });
      }
    }
  }
  return out;
}
