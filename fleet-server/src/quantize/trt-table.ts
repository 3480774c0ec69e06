/**
 * TensorRT INT8 calibration cache ("calibration table"), text form, from our calibrated ranges:
 * first line `TRT-<version>-EntropyCalibration2`, then one `tensorName: hex` line per tensor, the
 * hex being the big-endian bits of the float32 scale amax/127 (TensorRT Developer Guide, "INT8
 * Calibration Using C++"/IInt8EntropyCalibrator2 readCalibrationCache; the format is what
 * trtexec --calib and the samples' CalibrationTable files hold). TensorRT only uses symmetric
 * ranges, so amax = max(|min|, |max|). Tensor names are the ONNX value names, which TensorRT's
 * ONNX parser keeps as ITensor names. TensorRT 10 deprecates implicit calibration in favour of QDQ.
 */
import type { TensorRange } from './ranges.js';
import { FlatBufferBuilder } from '../export/flatbuffer.js';

const amaxOf = (r: TensorRange): number => Math.max(Math.abs(r.min), Math.abs(r.max));

export interface TrtTableOptions {
  /** TensorRT version as it appears in the header: 8601 for 8.6.1. */
  trtVersion?: number;
  algorithm?: 'EntropyCalibration2' | 'MinMaxCalibration' | 'LegacyCalibration';
}

export function floatHex(x: number): string {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, false);
  return b.getUint32(0, false).toString(16).padStart(8, '0');
}

export function renderTrtCalibrationTable(ranges: Map<string, TensorRange>, opts: TrtTableOptions = {}): string {
  const lines = [`TRT-${opts.trtVersion ?? 8601}-${opts.algorithm ?? 'EntropyCalibration2'}`];
  for (const [name, r] of ranges) {
    const amax = amaxOf(r);
    lines.push(`${name}: ${floatHex(amax > 0 ? amax / 127 : 1)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function parseTrtCalibrationTable(text: string): { header: string; scales: Map<string, number> } {
  const [header, ...rest] = text.trim().split('\n');
  const scales = new Map<string, number>();
  const dv = new DataView(new ArrayBuffer(4));
  for (const line of rest) {
    const i = line.lastIndexOf(': ');
    if (i < 0) continue;
    dv.setUint32(0, parseInt(line.slice(i + 2), 16), false);
    scales.set(line.slice(0, i), dv.getFloat32(0, false));
  }
  return { header, scales };
}

/**
 * The same ranges as onnxruntime's TensorRT execution provider reads them when
 * `trt_int8_use_native_calibration_table` is false (`trt_int8_calibration_table_name`, conventionally
 * `calibration.flatbuffers`): schema CalTableFlatBuffers (onnxruntime
 * core/providers/tensorrt/ort_trt_int8_cal_table.fbs: `table KeyValue { key: string (key); value:
 * string; }`, `table TrtTable { dict: [KeyValue]; }`, root TrtTable, no file identifier); one entry
 * per tensor, key = tensor name, value = amax as a decimal string (the EP parses it with std::stof),
 * entries sorted by key as a `(key)` vector must be.
 */
export function renderTrtCalibrationFlatbuffer(ranges: Map<string, TensorRange>): Uint8Array {
  const b = new FlatBufferBuilder();
  const names = [...ranges.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const entries = names.map((name) => {
    const key = b.string(name);
    const value = b.string(String(amaxOf(ranges.get(name)!)));
    b.startTable(2);
    b.fieldOffset(0, key);
    b.fieldOffset(1, value);
    return b.endTable();
  });
  const dict = b.offsetVector(entries);
  b.startTable(1);
  b.fieldOffset(0, dict);
  return b.finish(b.endTable());
}

/** Reads a TrtTable flatbuffer back (tensor name → amax), following the FlatBuffers wire format. */
export function parseTrtCalibrationFlatbuffer(bytes: Uint8Array): Map<string, number> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number): number => dv.getUint32(at, true);
  /** Absolute position of field `id` of the table at `table`, or undefined when absent. */
  const field = (table: number, id: number): number | undefined => {
    const vtable = table - dv.getInt32(table, true);
    if (4 + 2 * id >= dv.getUint16(vtable, true)) return undefined;
    const off = dv.getUint16(vtable + 4 + 2 * id, true);
    return off === 0 ? undefined : table + off;
  };
  const deref = (at: number): number => at + u32(at);
  const str = (at: number): string => new TextDecoder().decode(bytes.subarray(deref(at) + 4, deref(at) + 4 + u32(deref(at))));
  const root = u32(0);
  const out = new Map<string, number>();
  const dictAt = field(root, 0);
  if (dictAt === undefined) return out;
  const vec = deref(dictAt);
  for (let i = 0; i < u32(vec); i++) {
    const kv = deref(vec + 4 + 4 * i);
    const k = field(kv, 0), v = field(kv, 1);
    if (k !== undefined && v !== undefined) out.set(str(k), Number(str(v)));
  }
  return out;
}
