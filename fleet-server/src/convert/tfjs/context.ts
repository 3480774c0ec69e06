/**
 * State shared by the op mappers while one TF.js graph becomes an ONNX graph: TF tensor references
 * → ONNX value names, constants (turned into initializers only when an ONNX node reads them), and
 * helpers that emit nodes. TF tensor `node:k` becomes the ONNX value `node` (k = 0) or `node:k`,
 * unless the model's signature names it otherwise.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { DataType, floatTensor, int32Tensor, int64Tensor, type OnnxAttribute, type OnnxGraph, type OnnxTensor } from '../onnx/model.js';
import { parseRef, type TfNode, type TfWeight } from './reader.js';

export const NHWC_TO_NCHW = [0, 3, 1, 2];
export const NCHW_TO_NHWC = [0, 2, 3, 1];

/** TF DataType enum names (tensorflow/core/framework/types.proto) → ONNX TensorProto.DataType. */
export function onnxTypeOf(tfType: string | undefined): number {
  switch (tfType) {
    case 'DT_FLOAT': return DataType.FLOAT;
    case 'DT_INT32': return DataType.INT32;
    case 'DT_INT64': return DataType.INT64;
    case 'DT_BOOL': return DataType.BOOL;
    case 'DT_HALF': return DataType.FLOAT16;
    case 'DT_DOUBLE': return DataType.DOUBLE;
    case 'DT_UINT8': return DataType.UINT8;
    case 'DT_INT8': return DataType.INT8;
    default: throw new ModelError(`TF data type ${tfType ?? '(none)'} has no ONNX mapping here (float, int32, int64, bool, half, double, uint8, int8 are mapped)`);
  }
}

export class ConvertContext {
  private readonly constants = new Map<string, TfWeight>();
  private readonly nchwCache = new Map<string, string>();
  private readonly used = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private counter = 0;

  constructor(
    readonly graph: OnnxGraph,
    readonly nodesByName: Map<string, TfNode>,
    weights: Map<string, TfWeight>,
    /** TF ref (`node:k`) → ONNX name for signature inputs/outputs. */
    private readonly aliases: Map<string, string>,
  ) {
    for (const n of nodesByName.values()) if (n.op === 'Const') {
      const w = weights.get(n.name);
      if (w) this.constants.set(n.name, w);
    }
  }

  /** ONNX value name of output k of TF node `node`. */
  valueName(node: string, k = 0): string {
    return this.aliases.get(`${node}:${k}`) ?? (k === 0 ? node : `${node}:${k}`);
  }

  /** The ONNX value for a TF input reference; constants become initializers on first use. */
  input(ref: string): string {
    const r = parseRef(ref);
    const c = this.constants.get(r.node);
    if (c && r.index === 0) {
      const name = this.valueName(r.node);
      if (!this.graph.initializers.has(name)) this.graph.initializers.set(name, weightToTensor(c));
      return name;
    }
    return this.valueName(r.node, r.index);
  }

  /** The constant behind a TF input reference, or undefined when it is computed at run time. */
  constant(ref: string): TfWeight | undefined {
    const r = parseRef(ref);
    let name = r.node;
    // Identity of a constant is still a constant.
    for (let hop = 0; hop < 8; hop++) {
      const c = this.constants.get(name);
      if (c) return c;
      const n = this.nodesByName.get(name);
      if (n?.op !== 'Identity' || !n.input?.[0]) return undefined;
      name = parseRef(n.input[0]).node;
    }
    return undefined;
  }

  /** Integer values of a constant input, or a clear error naming the node that needs them. */
  constInts(node: TfNode, inputIndex: number, what: string): number[] {
    const c = this.constant(node.input?.[inputIndex] ?? '');
    if (!c || c.dtype === 'float32') {
      throw new ModelError(`${node.op} node "${node.name}": its ${what} (input ${inputIndex}) must be an integer constant for the ONNX export, but it is computed at run time`);
    }
    return Array.from(c.values);
  }

  /** A fresh value name derived from a node name. */
  tmp(base: string, suffix: string): string {
    let name = `${base}/__${suffix}`;
    while (this.used.has(name)) name = `${base}/__${suffix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  addInitializer(base: string, suffix: string, t: OnnxTensor): string {
    const name = this.tmp(base, suffix);
    this.graph.initializers.set(name, t);
    return name;
  }

  int64(base: string, suffix: string, values: readonly (number | bigint)[], dims: number[] = [values.length]): string {
    return this.addInitializer(base, suffix, int64Tensor(dims, values));
  }

  float(base: string, suffix: string, values: readonly number[], dims: number[] = [values.length]): string {
    return this.addInitializer(base, suffix, floatTensor(dims, values));
  }

  add(opType: string, inputs: string[], outputs: string[], attributes: OnnxAttribute[] = [], name?: string): void {
    // Node names are unique (the ONNX checker and tools key on them): the first node of a TF op keeps
    // the TF name, helpers get `/OpType` suffixes.
    let unique = name ?? outputs[0];
    if (this.nodeNames.has(unique)) unique = `${unique}/${opType}`;
    for (let i = 1; this.nodeNames.has(unique); i++) unique = `${name ?? outputs[0]}/${opType}_${i}`;
    this.nodeNames.add(unique);
    this.graph.nodes.push({ opType, name: unique, inputs, outputs, attributes });
  }

  /** NHWC value → its NCHW transpose, emitted once per value. */
  toNchw(value: string): string {
    const hit = this.nchwCache.get(value);
    if (hit) return hit;
    const out = this.tmp(value, 'nchw');
    this.add('Transpose', [value], [out], [{ name: 'perm', type: 'ints', value: NHWC_TO_NCHW }]);
    this.nchwCache.set(value, out);
    return out;
  }

  fromNchw(value: string, out: string): void {
    this.add('Transpose', [value], [out], [{ name: 'perm', type: 'ints', value: NCHW_TO_NHWC }]);
  }
}

export function weightToTensor(w: TfWeight): OnnxTensor {
  if (w.dtype === 'float32') return floatTensor(w.shape, w.values);
  if (w.dtype === 'int32') return int32Tensor(w.shape, w.values);
  return { dims: w.shape, dataType: DataType.BOOL, data: Uint8Array.from(w.values) };
}

// ---- TF attribute accessors (GraphDef JSON: AttrValue with s base64, i as string, f, b, type, list) ----

type Attr = Record<string, unknown> | undefined;

function attrOf(node: TfNode, key: string): Attr {
  return node.attr?.[key] as Attr;
}

export function attrString(node: TfNode, key: string): string | undefined {
  const s = attrOf(node, key)?.s;
  return typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined;
}

export function attrInt(node: TfNode, key: string, dflt: number): number {
  const i = attrOf(node, key)?.i;
  return i === undefined ? dflt : Number(i);
}

export function attrFloat(node: TfNode, key: string, dflt: number): number {
  const f = attrOf(node, key)?.f;
  return f === undefined ? dflt : Number(f);
}

export function attrBool(node: TfNode, key: string, dflt: boolean): boolean {
  const b = attrOf(node, key)?.b;
  return b === undefined ? dflt : Boolean(b);
}

export function attrType(node: TfNode, key: string): string | undefined {
  const t = attrOf(node, key)?.type;
  return typeof t === 'string' ? t : undefined;
}

export function attrInts(node: TfNode, key: string): number[] {
  const list = attrOf(node, key)?.list as { i?: unknown[] } | undefined;
  return (list?.i ?? []).map((v) => Number(v));
}

export function attrStrings(node: TfNode, key: string): string[] {
  const list = attrOf(node, key)?.list as { s?: string[] } | undefined;
  return (list?.s ?? []).map((v) => Buffer.from(v, 'base64').toString('utf8'));
}

export function attrShape(node: TfNode, key: string): number[] | undefined {
  const shape = attrOf(node, key)?.shape as { dim?: { size?: string }[]; unknownRank?: boolean } | undefined;
  if (!shape || shape.unknownRank) return undefined;
  return (shape.dim ?? []).map((d) => Number(d.size ?? -1));
}
