/**
 * Reading back what publishing needs from a TFLite flatbuffer: whether it is quantized (an INT8 file
 * labelled fp32 would skip the accuracy gate). FlatBuffers layout as in ../flatbuffer.ts: the root
 * table's uoffset at byte 0; a table's soffset to its vtable; vtable [bytes, table bytes, field
 * offsets...]; vectors are a u32 length then uoffsets to their tables. Field ids from ./schema.ts.
 */
import { F, TensorType } from './schema.js';

/** The TensorType of every tensor in every subgraph; throws RangeError on a truncated or malformed file. */
export function tfliteTensorTypes(bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number): number => dv.getUint32(at, true);
  const ref = (at: number): number => at + u32(at);
  const field = (table: number, id: number): number | undefined => {
    const vtable = table - dv.getInt32(table, true);
    const at = 4 + 2 * id;
    const off = at < dv.getUint16(vtable, true) ? dv.getUint16(vtable + at, true) : 0;
    return off ? table + off : undefined;
  };
  const tables = (table: number, id: number): number[] => {
    const f = field(table, id);
    if (f === undefined) return [];
    const v = ref(f);
    return Array.from({ length: u32(v) }, (_, i) => ref(v + 4 + 4 * i));
  };
  const types: number[] = [];
  for (const sg of tables(ref(0), F.Model.subgraphs)) {
    for (const t of tables(sg, F.SubGraph.tensors)) {
      const f = field(t, F.Tensor.type);
      types.push(f === undefined ? TensorType.FLOAT32 : dv.getInt8(f));
    }
  }
  return types;
}

/** INT8 tensors (full-integer or INT8-weight files); FP16 files hold FLOAT16 weights and are not. Undefined: not readable. */
export function isQuantizedTflite(bytes: Uint8Array): boolean | undefined {
  try {
    return tfliteTensorTypes(bytes).includes(TensorType.INT8);
  } catch {
    return undefined;
  }
}
