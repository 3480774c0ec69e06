/**
 * ModelProto ⇄ OnnxModel. Field numbers are those of onnx/onnx.proto (ONNX 1.12, IR version 8):
 *   ModelProto: ir_version 1, opset_import 8, producer_name 2, producer_version 3, domain 4,
 *     model_version 5, doc_string 6, graph 7, metadata_props 14 (training_info 20, functions 25 kept raw)
 *   OperatorSetIdProto: domain 1, version 2      StringStringEntryProto: key 1, value 2
 *   GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12, value_info 13
 *     (sparse_initializer 15, quantization_annotation 14 kept raw)
 *   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7
 *   AttributeProto: name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9, doc_string 13, type 20
 *     AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, GRAPH 5, FLOATS 6, INTS 7, STRINGS 8
 *   TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9,
 *     double_data 10, uint64_data 11, data_location 14 (external data is refused)
 *   ValueInfoProto: name 1, type 2, doc_string 3     TypeProto: tensor_type 1
 *   TypeProto.Tensor: elem_type 1, shape 2   TensorShapeProto: dim 1   Dimension: dim_value 1, dim_param 2
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { ProtoReader, ProtoWriter, readFloats, readInts, toInt, toStr, WIRE, type RawField } from './wire.js';
import { bytesPerElement, DataType, elementCount, type OnnxAttribute, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './model.js';

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

// ---- write -------------------------------------------------------------------------------------

export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  if (model.producerName) w.string(2, model.producerName);
  if (model.producerVersion) w.string(3, model.producerVersion);
  if (model.domain) w.string(4, model.domain);
  if (model.modelVersion !== undefined) w.int(5, model.modelVersion);
  if (model.docString) w.string(6, model.docString);
  w.message(7, (g) => writeGraph(g, model.graph));
  for (const op of model.opsetImports) w.message(8, (o) => { if (op.domain) o.string(1, op.domain); o.int(2, op.version); });
  for (const [key, value] of Object.entries(model.metadataProps)) w.message(14, (e) => e.string(1, key).string(2, value));
  for (const f of model.unknownFields ?? []) w.raw(f);
  return w.finish();
}

function writeGraph(w: ProtoWriter, g: OnnxGraph): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const [name, t] of g.initializers) w.message(5, (m) => writeTensor(m, t, name));
  if (g.docString) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
  for (const v of g.valueInfo) w.message(13, (m) => writeValueInfo(m, v));
  for (const f of g.unknownFields ?? []) w.raw(f);
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.message(5, (m) => writeAttribute(m, a));
  if (n.docString) w.string(6, n.docString);
  if (n.domain !== undefined) w.string(7, n.domain);
}

function writeAttribute(w: ProtoWriter, a: OnnxAttribute): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'float': w.float(2, a.value).int(20, ATTR.FLOAT); break;
    case 'int': w.int(3, a.value).int(20, ATTR.INT); break;
    case 'string': w.string(4, a.value).int(20, ATTR.STRING); break;
    case 'tensor': w.message(5, (m) => writeTensor(m, a.value)).int(20, ATTR.TENSOR); break;
    case 'graph': w.message(6, (m) => writeGraph(m, a.value)).int(20, ATTR.GRAPH); break;
    case 'floats': w.packedFloats(7, a.value).int(20, ATTR.FLOATS); break;
    case 'ints': w.packedInts(8, a.value).int(20, ATTR.INTS); break;
    case 'strings': for (const s of a.value) w.string(9, s); w.int(20, ATTR.STRINGS); break;
  }
}

function writeTensor(w: ProtoWriter, t: OnnxTensor, name?: string): void {
  w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  if (name) w.string(8, name);
  w.bytes(9, t.data);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  if (v.elemType) {
    w.message(2, (tp) => tp.message(1, (tt) => {
      tt.int(1, v.elemType);
      if (v.shape) {
        const shape = v.shape;
        tt.message(2, (sh) => {
          for (const d of shape) {
            sh.message(1, (dm) => {
              if (typeof d === 'number') dm.int(1, d);
              else if (typeof d === 'string') dm.string(2, d);
            });
          }
        });
      }
    }));
  }
  if (v.docString) w.string(3, v.docString);
}

// ---- read --------------------------------------------------------------------------------------

/** A StringStringEntryProto: key 1, value 2. */
function readStringEntry(bytes: Uint8Array): [string, string] {
  let key = '';
  let value = '';
  for (const g of new ProtoReader(bytes).fields()) {
    if (g.field === 1) key = toStr(g.bytes);
    else if (g.field === 2) value = toStr(g.bytes);
  }
  return [key, value];
}

/**
 * The model's metadata_props alone: the top-level fields are walked and the graph is skipped by its
 * length, not decoded, so reading a large model's metadata costs one pass over its field headers.
 */
export function readMetadataProps(bytes: Uint8Array): Record<string, string> {
  const props: Record<string, string> = {};
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field !== 14 || f.wire !== 2) continue;
    const [key, value] = readStringEntry(f.bytes);
    props[key] = value;
  }
  return props;
}

export function decodeModel(bytes: Uint8Array): OnnxModel {
  const model: OnnxModel = { irVersion: 0, opsetImports: [], metadataProps: {}, graph: { name: '', nodes: [], initializers: new Map(), inputs: [], outputs: [], valueInfo: [] } };
  let sawGraph = false;
  const unknown: RawField[] = [];
  for (const f of new ProtoReader(bytes).fields()) {
    switch (f.field) {
      case 1: model.irVersion = toInt(f.varint); break;
      case 2: model.producerName = toStr(f.bytes); break;
      case 3: model.producerVersion = toStr(f.bytes); break;
      case 4: model.domain = toStr(f.bytes); break;
      case 5: model.modelVersion = toInt(f.varint); break;
      case 6: model.docString = toStr(f.bytes); break;
      case 7: model.graph = readGraph(f.bytes); sawGraph = true; break;
      case 8: {
        const op = { domain: '', version: 0 };
        for (const g of new ProtoReader(f.bytes).fields()) {
          if (g.field === 1) op.domain = toStr(g.bytes);
          else if (g.field === 2) op.version = toInt(g.varint);
        }
        model.opsetImports.push(op);
        break;
      }
      case 14: {
        const [key, value] = readStringEntry(f.bytes);
        model.metadataProps[key] = value;
        break;
      }
      default: unknown.push({ field: f.field, wire: f.wire, bytes: f.payload });
    }
  }
  if (!sawGraph || model.irVersion === 0) {
    throw new ModelError(`Expected an ONNX ModelProto with ir_version and a graph but found ${sawGraph ? 'no ir_version' : 'no graph'}; is this an .onnx file?`);
  }
  if (unknown.length) model.unknownFields = unknown;
  return model;
}

function readGraph(bytes: Uint8Array): OnnxGraph {
  const g: OnnxGraph = { name: '', nodes: [], initializers: new Map(), inputs: [], outputs: [], valueInfo: [] };
  const unknown: RawField[] = [];
  for (const f of new ProtoReader(bytes).fields()) {
    switch (f.field) {
      case 1: g.nodes.push(readNode(f.bytes)); break;
      case 2: g.name = toStr(f.bytes); break;
      case 5: {
        const { name, tensor } = readTensor(f.bytes);
        g.initializers.set(name, tensor);
        break;
      }
      case 10: g.docString = toStr(f.bytes); break;
      case 11: g.inputs.push(readValueInfo(f.bytes)); break;
      case 12: g.outputs.push(readValueInfo(f.bytes)); break;
      case 13: g.valueInfo.push(readValueInfo(f.bytes)); break;
      default: unknown.push({ field: f.field, wire: f.wire, bytes: f.payload });
    }
  }
  if (unknown.length) g.unknownFields = unknown;
  return g;
}

function readNode(bytes: Uint8Array): OnnxNode {
  const n: OnnxNode = { opType: '', name: '', inputs: [], outputs: [], attributes: [] };
  for (const f of new ProtoReader(bytes).fields()) {
    switch (f.field) {
      case 1: n.inputs.push(toStr(f.bytes)); break;
      case 2: n.outputs.push(toStr(f.bytes)); break;
      case 3: n.name = toStr(f.bytes); break;
      case 4: n.opType = toStr(f.bytes); break;
      case 5: n.attributes.push(readAttribute(f.bytes)); break;
      case 6: n.docString = toStr(f.bytes); break;
      case 7: n.domain = toStr(f.bytes); break;
      default: break; // NodeProto has no other fields in IR 8
    }
  }
  return n;
}

function readAttribute(bytes: Uint8Array): OnnxAttribute {
  let name = '';
  let type = 0;
  let f32 = 0;
  let i64 = 0;
  let s = '';
  let t: OnnxTensor | undefined;
  let g: OnnxGraph | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  const strings: string[] = [];
  for (const f of new ProtoReader(bytes).fields()) {
    switch (f.field) {
      case 1: name = toStr(f.bytes); break;
      case 2: f32 = new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getFloat32(0, true); break;
      case 3: i64 = toInt(f.varint); break;
      case 4: s = toStr(f.bytes); break;
      case 5: t = readTensor(f.bytes).tensor; break;
      case 6: g = readGraph(f.bytes); break;
      case 7: readFloats(f, floats); break;
      case 8: readInts(f, ints); break;
      case 9: strings.push(toStr(f.bytes)); break;
      case 20: type = toInt(f.varint); break;
      default: break;
    }
  }
  switch (type) {
    case ATTR.FLOAT: return { name, type: 'float', value: f32 };
    case ATTR.INT: return { name, type: 'int', value: i64 };
    case ATTR.STRING: return { name, type: 'string', value: s };
    case ATTR.TENSOR: if (t) return { name, type: 'tensor', value: t }; break;
    case ATTR.GRAPH: if (g) return { name, type: 'graph', value: g }; break;
    case ATTR.FLOATS: return { name, type: 'floats', value: floats };
    case ATTR.INTS: return { name, type: 'ints', value: ints };
    case ATTR.STRINGS: return { name, type: 'strings', value: strings };
    default: break;
  }
  throw new ModelError(`Attribute "${name}" has type ${type}, which this ONNX reader does not support (it reads FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS)`);
}

function readTensor(bytes: Uint8Array): { name: string; tensor: OnnxTensor } {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  const floatData: number[] = [];
  const intData: number[] = [];
  const int64Data: bigint[] = [];
  const doubleData: number[] = [];
  let external = false;
  for (const f of new ProtoReader(bytes).fields()) {
    switch (f.field) {
      case 1: readInts(f, dims); break;
      case 2: dataType = toInt(f.varint); break;
      case 4: readFloats(f, floatData); break;
      case 5: readInts(f, intData); break;
      case 7: case 11:
        if (f.wire === WIRE.varint) int64Data.push(f.varint);
        else for (const v of new ProtoReader(f.bytes).varints()) int64Data.push(v);
        break;
      case 8: name = toStr(f.bytes); break;
      case 9: raw = f.bytes.slice(); break;
      case 10: {
        const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
        if (f.wire === WIRE.i64) doubleData.push(dv.getFloat64(0, true));
        else for (let i = 0; i + 8 <= f.bytes.byteLength; i += 8) doubleData.push(dv.getFloat64(i, true));
        break;
      }
      case 14: external = toInt(f.varint) === 1; break;
      default: break;
    }
  }
  if (external) throw new ModelError(`Tensor "${name}" keeps its data in an external file; this reader needs the data inside the .onnx file (re-save the model without external data)`);
  const size = bytesPerElement(dataType);
  if (size === 0) throw new ModelError(`Tensor "${name}" has data type ${dataType}, which this reader does not support (numeric types only)`);
  return { name, tensor: { dims, dataType, data: raw ?? typedToRaw(dataType, elementCount(dims), { floatData, intData, int64Data, doubleData }) } };
}

/** Converts the typed repeated fields (float_data, int32_data, int64_data, double_data, uint64_data) to raw bytes. */
function typedToRaw(dt: number, count: number, d: { floatData: number[]; intData: number[]; int64Data: bigint[]; doubleData: number[] }): Uint8Array {
  const out = new Uint8Array(count * bytesPerElement(dt));
  const dv = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    switch (dt) {
      case DataType.FLOAT: dv.setFloat32(i * 4, d.floatData[i] ?? 0, true); break;
      case DataType.DOUBLE: dv.setFloat64(i * 8, d.doubleData[i] ?? 0, true); break;
      case DataType.INT64: case DataType.UINT64: dv.setBigUint64(i * 8, BigInt.asUintN(64, d.int64Data[i] ?? 0n), true); break;
      case DataType.UINT32: dv.setUint32(i * 4, Number(BigInt.asUintN(32, d.int64Data[i] ?? 0n)), true); break;
      // int32_data carries INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16/BFLOAT16 (as bit patterns): onnx.proto, TensorProto.int32_data
      case DataType.INT32: dv.setInt32(i * 4, d.intData[i] ?? 0, true); break;
      case DataType.INT16: dv.setInt16(i * 2, d.intData[i] ?? 0, true); break;
      case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: dv.setUint16(i * 2, d.intData[i] ?? 0, true); break;
      case DataType.INT8: dv.setInt8(i, d.intData[i] ?? 0); break;
      case DataType.UINT8: case DataType.BOOL: dv.setUint8(i, d.intData[i] ?? 0); break;
      default: break;
    }
  }
  return out;
}

function readValueInfo(bytes: Uint8Array): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: 0 };
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) v.name = toStr(f.bytes);
    else if (f.field === 3) v.docString = toStr(f.bytes);
    else if (f.field === 2) {
      for (const tp of new ProtoReader(f.bytes).fields()) {
        if (tp.field !== 1) continue;
        for (const tt of new ProtoReader(tp.bytes).fields()) {
          if (tt.field === 1) v.elemType = toInt(tt.varint);
          else if (tt.field === 2) {
            const shape: (number | string | null)[] = [];
            for (const dim of new ProtoReader(tt.bytes).fields()) {
              if (dim.field !== 1) continue;
              let d: number | string | null = null;
              for (const x of new ProtoReader(dim.bytes).fields()) {
                if (x.field === 1) d = toInt(x.varint);
                else if (x.field === 2) d = toStr(x.bytes);
              }
              shape.push(d);
            }
            v.shape = shape;
          }
        }
      }
    }
  }
  return v;
}
