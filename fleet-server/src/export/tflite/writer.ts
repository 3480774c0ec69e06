/**
 * TflModel → TFLite flatbuffer bytes. Layout per schema.fbs: Model{version, operator_codes,
 * subgraphs:[SubGraph{tensors, inputs, outputs, operators, name}], description, buffers}; buffer 0 is
 * the empty sentinel that activations point at ("this is 0 (which refers to an always existent empty
 * buffer)", schema.fbs Tensor.buffer).
 */
import { FlatBufferBuilder, type FbOffset } from '../flatbuffer.js';
import { F, PLACEHOLDER_FOR_GREATER_OP_CODES, TFL_FILE_IDENTIFIER, TFL_SCHEMA_VERSION } from './schema.js';
import type { TflModel, TflOperator, TflTensor } from './model.js';

export function writeTflite(model: TflModel): Uint8Array {
  const b = new FlatBufferBuilder();
  const codes = [...new Set(model.operators.map((o) => o.code))];

  // Buffers: 0 = empty, then one per constant tensor.
  const bufferOfTensor = new Map<number, number>();
  const bufferTables: FbOffset[] = [];
  b.startTable(1);
  bufferTables.push(b.endTable());
  model.tensors.forEach((t, i) => {
    if (!t.data) return;
    const data = b.bytesVector(t.data);
    b.startTable(3);
    b.fieldOffset(F.Buffer.data, data);
    bufferOfTensor.set(i, bufferTables.length);
    bufferTables.push(b.endTable());
  });

  const tensorTables = model.tensors.map((t, i) => writeTensor(b, t, bufferOfTensor.get(i) ?? 0));
  const opTables = model.operators.map((o) => writeOperator(b, o, codes.indexOf(o.code)));

  const tensors = b.offsetVector(tensorTables);
  const inputs = b.int32Vector(model.inputs);
  const outputs = b.int32Vector(model.outputs);
  const operators = b.offsetVector(opTables);
  const name = b.string('main');
  b.startTable(5);
  b.fieldOffset(F.SubGraph.tensors, tensors);
  b.fieldOffset(F.SubGraph.inputs, inputs);
  b.fieldOffset(F.SubGraph.outputs, outputs);
  b.fieldOffset(F.SubGraph.operators, operators);
  b.fieldOffset(F.SubGraph.name, name);
  const subgraph = b.endTable();

  const codeTables = codes.map((code) => {
    b.startTable(4);
    b.fieldInt8(F.OperatorCode.deprecated_builtin_code, Math.min(code, PLACEHOLDER_FOR_GREATER_OP_CODES));
    b.fieldInt32(F.OperatorCode.version, 1);
    b.fieldInt32(F.OperatorCode.builtin_code, code);
    return b.endTable();
  });
  const opCodes = b.offsetVector(codeTables);
  const subgraphs = b.offsetVector([subgraph]);
  const description = b.string(model.description);
  const buffers = b.offsetVector(bufferTables);
  b.startTable(5);
  b.fieldInt32(F.Model.version, TFL_SCHEMA_VERSION);
  b.fieldOffset(F.Model.operator_codes, opCodes);
  b.fieldOffset(F.Model.subgraphs, subgraphs);
  b.fieldOffset(F.Model.description, description);
  b.fieldOffset(F.Model.buffers, buffers);
  return b.finish(b.endTable(), TFL_FILE_IDENTIFIER);
}

function writeTensor(b: FlatBufferBuilder, t: TflTensor, buffer: number): FbOffset {
  const shape = b.int32Vector(t.shape);
  const name = b.string(t.name);
  let quant: FbOffset | undefined;
  if (t.quant) {
    const q = t.quant;
    const min = q.min ? b.float32Vector(q.min) : undefined;
    const max = q.max ? b.float32Vector(q.max) : undefined;
    const scale = b.float32Vector(q.scale);
    const zp = b.int64Vector(q.zeroPoint);
    b.startTable(7);
    if (min !== undefined) b.fieldOffset(F.QuantizationParameters.min, min);
    if (max !== undefined) b.fieldOffset(F.QuantizationParameters.max, max);
    b.fieldOffset(F.QuantizationParameters.scale, scale);
    b.fieldOffset(F.QuantizationParameters.zero_point, zp);
    if (q.dim) b.fieldInt32(F.QuantizationParameters.quantized_dimension, q.dim);
    quant = b.endTable();
  }
  b.startTable(5);
  b.fieldOffset(F.Tensor.shape, shape);
  b.fieldInt8(F.Tensor.type, t.type);
  b.fieldInt32(F.Tensor.buffer, buffer);
  b.fieldOffset(F.Tensor.name, name);
  if (quant !== undefined) b.fieldOffset(F.Tensor.quantization, quant);
  return b.endTable();
}

function writeOperator(b: FlatBufferBuilder, o: TflOperator, opcodeIndex: number): FbOffset {
  let options: FbOffset | undefined;
  if (o.options) {
    const vecs = new Map<number, FbOffset>();
    for (const f of o.options.fields) if (f.kind === 'i32vec') vecs.set(f.id, b.int32Vector(f.value));
    b.startTable(Math.max(1, ...o.options.fields.map((f) => f.id + 1)));
    for (const f of o.options.fields) {
      if (f.kind === 'i8') b.fieldInt8(f.id, f.value);
      else if (f.kind === 'i32') b.fieldInt32(f.id, f.value);
      else b.fieldOffset(f.id, vecs.get(f.id)!);
    }
    options = b.endTable();
  }
  const inputs = b.int32Vector(o.inputs);
  const outputs = b.int32Vector(o.outputs);
  b.startTable(5);
  b.fieldInt32(F.Operator.opcode_index, opcodeIndex);
  b.fieldOffset(F.Operator.inputs, inputs);
  b.fieldOffset(F.Operator.outputs, outputs);
  if (options !== undefined) {
    b.fieldInt8(F.Operator.builtin_options_type, o.options!.type);
    b.fieldOffset(F.Operator.builtin_options, options);
  }
  return b.endTable();
}
