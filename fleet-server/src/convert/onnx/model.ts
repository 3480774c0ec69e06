/**
 * In-memory ONNX model, shaped for graph rewriting: nodes in an array (topological order),
 * initializers in a Map name → tensor with raw little-endian bytes, inputs/outputs/valueInfo as
 * plain records. Field meanings follow onnx/onnx.proto (IR version 8, ONNX 1.12+).
 */

/** TensorProto.DataType (onnx.proto). */
export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8,
  BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** Bytes per element for the fixed-size types (STRING has none). */
export function bytesPerElement(dt: number): number {
  switch (dt) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.INT64: case DataType.UINT64: case DataType.DOUBLE: return 8;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 2;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL: return 1;
    default: return 0;
  }
}

export interface OnnxTensor {
  dims: number[];
  dataType: number;
  /** Raw little-endian element bytes (TensorProto.raw_data; typed *_data fields are converted on read). */
  data: Uint8Array;
}

/** A dimension: a fixed size, a symbolic name, or unknown. */
export type OnnxDim = number | string | null;

export interface OnnxValueInfo {
  name: string;
  /** Element type (TensorProto.DataType); 0 when the value has no tensor type. */
  elemType: number;
  /** Undefined when the shape is unknown (no TensorShapeProto at all). */
  shape?: OnnxDim[];
  docString?: string;
}

export type OnnxAttribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'tensor'; value: OnnxTensor }
  | { name: string; type: 'graph'; value: OnnxGraph }
  | { name: string; type: 'floats'; value: number[] }
  | { name: string; type: 'ints'; value: number[] }
  | { name: string; type: 'strings'; value: string[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes: OnnxAttribute[];
  docString?: string;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
  docString?: string;
  /** GraphProto fields this codec does not model (sparse_initializer, quantization_annotation), kept verbatim. */
  unknownFields?: { field: number; wire: number; bytes: Uint8Array }[];
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  metadataProps: Record<string, string>;
  graph: OnnxGraph;
  /** ModelProto fields this codec does not model (training_info, functions), kept verbatim. */
  unknownFields?: { field: number; wire: number; bytes: Uint8Array }[];
}

/** Ops only a quantized ONNX graph has (QDQ form, or ORT's QOperator form). */
const QUANTIZED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

/** INT8 when `model quantize` marked it so, or when it has quantization ops (another tool's QDQ file). */
export function isQuantizedModel(model: OnnxModel): boolean {
  return model.metadataProps['edgefleet.precision'] === 'int8' || model.graph.nodes.some((n) => QUANTIZED_OPS.has(n.opType));
}

export function emptyGraph(name: string): OnnxGraph {
  return { name, nodes: [], initializers: new Map(), inputs: [], outputs: [], valueInfo: [] };
}

// ---- tensor helpers ----------------------------------------------------------------------------

export function floatTensor(dims: number[], values: ArrayLike<number>): OnnxTensor {
  const arr = Float32Array.from(values);
  return { dims, dataType: DataType.FLOAT, data: new Uint8Array(arr.buffer) };
}

export function int64Tensor(dims: number[], values: readonly (number | bigint)[]): OnnxTensor {
  const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { dims, dataType: DataType.INT64, data: new Uint8Array(arr.buffer) };
}

export function int32Tensor(dims: number[], values: ArrayLike<number>): OnnxTensor {
  const arr = Int32Array.from(values);
  return { dims, dataType: DataType.INT32, data: new Uint8Array(arr.buffer) };
}

/** Aligned copy, so typed-array views over it are always legal. */
function aligned(t: OnnxTensor): ArrayBuffer {
  // A copy of exactly these bytes at offset 0. Not `t.data.slice()`: on a Node Buffer (decodeModel
  // of readFileSync output) slice() is a view into the whole file, so `.buffer` would start elsewhere.
  return Uint8Array.prototype.slice.call(t.data).buffer as ArrayBuffer;
}

export function tensorToFloat32(t: OnnxTensor): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new TypeError(`tensorToFloat32 expects FLOAT (1) but the tensor is type ${t.dataType}`);
  return new Float32Array(aligned(t));
}

/** Integer tensor (INT32 or INT64) as JS numbers. */
export function tensorToInts(t: OnnxTensor): number[] {
  if (t.dataType === DataType.INT32) return Array.from(new Int32Array(aligned(t)));
  if (t.dataType === DataType.INT64) return Array.from(new BigInt64Array(aligned(t)), (v) => Number(v));
  throw new TypeError(`tensorToInts expects INT32 (6) or INT64 (7) but the tensor is type ${t.dataType}`);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function attr(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attributes.find((a) => a.name === name);
}

/** An `int` attribute's value, or `fallback` when the node does not set it. */
export function intAttr(node: OnnxNode, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.type === 'int' ? a.value : fallback;
}

/** An `ints` attribute's values, or undefined when the node does not set it. */
export function intsAttr(node: OnnxNode, name: string): number[] | undefined {
  const a = attr(node, name);
  return a?.type === 'ints' ? a.value : undefined;
}

// ---- Conv / pooling geometry ------------------------------------------------------------------

export interface ConvPadding {
  /** Padding before (top, left) and after (bottom, right), per spatial axis. */
  before: number[];
  after: number[];
  outHW: number[];
}

/** SAME padding (ONNX SAME_UPPER, TF "SAME": the odd cell goes after; SAME_LOWER puts it before). */
export function samePadding(inHW: readonly number[], kernel: readonly number[], strides: readonly number[], dil: readonly number[], lower = false): ConvPadding {
  const p: ConvPadding = { before: [], after: [], outHW: [] };
  inHW.forEach((size, i) => {
    const out = Math.ceil(size / strides[i]);
    const total = Math.max((out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - size, 0);
    const small = Math.floor(total / 2);
    p.before.push(lower ? total - small : small);
    p.after.push(lower ? small : total - small);
    p.outHW.push(out);
  });
  return p;
}

/** A Conv/pool node's padding and output size per the ONNX spec: auto_pad SAME_UPPER/SAME_LOWER/VALID, else `pads`. */
export function convPadding(n: OnnxNode, inHW: readonly number[], kernel: readonly number[], strides: readonly number[], dil: readonly number[]): ConvPadding {
  const autoPad = attr(n, 'auto_pad');
  const mode = autoPad?.type === 'string' ? autoPad.value : 'NOTSET';
  if (mode === 'SAME_UPPER' || mode === 'SAME_LOWER') return samePadding(inHW, kernel, strides, dil, mode === 'SAME_LOWER');
  const pads = mode === 'VALID' ? [0, 0, 0, 0] : intsAttr(n, 'pads') ?? [0, 0, 0, 0];
  const k = inHW.length;
  return {
    before: pads.slice(0, k),
    after: pads.slice(k, 2 * k),
    outHW: inHW.map((size, i) => Math.floor((size + pads[i] + pads[i + k] - ((kernel[i] - 1) * dil[i] + 1)) / strides[i]) + 1),
  };
}
