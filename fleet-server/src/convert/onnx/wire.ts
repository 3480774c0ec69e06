/**
 * A minimal protobuf wire-format writer and reader: just what ONNX's messages need.
 * Wire types and varint/zigzag rules follow the Protocol Buffers encoding guide
 * (https://protobuf.dev/programming-guides/encoding/): 0 = VARINT, 1 = I64, 2 = LEN, 5 = I32.
 * int64 fields are two's complement in a 10-byte varint when negative (not zigzag; ONNX uses no sint).
 */
import { ModelError } from '../../../../agent/src/util/errors.js';

export const WIRE = { varint: 0, i64: 1, len: 2, i32: 5 } as const;

/** Growable byte buffer that writes protobuf fields. Nested messages are written into their own writer. */
export class ProtoWriter {
  private buf = new Uint8Array(1024);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private rawVarint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private smallVarint(value: number): void {
    if (value >= 0 && value < 0x80000000) {
      this.ensure(5);
      let v = value;
      while (v >= 0x80) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
    } else {
      this.rawVarint(BigInt(value));
    }
  }

  private tag(field: number, wire: number): void {
    this.smallVarint((field << 3) | wire);
  }

  /** int32/int64/enum/bool field (numbers must be integers; negative values take 10 bytes). */
  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE.varint);
    if (typeof value === 'bigint') this.rawVarint(value);
    else this.smallVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE.i32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE.len);
    this.smallVarint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, write: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    write(inner);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated varints (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new ProtoWriter();
    for (const v of values) {
      if (typeof v === 'bigint') inner.rawVarint(v);
      else inner.smallVarint(v);
    }
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const data = new Uint8Array(values.length * 4);
    const dv = new DataView(data.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  /** Re-emits a field kept verbatim from a decoded message (unknown to this codec). */
  raw(field: RawField): this {
    this.tag(field.field, field.wire);
    this.ensure(field.bytes.length);
    this.buf.set(field.bytes, this.len);
    this.len += field.bytes.length;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** A field this codec does not model, kept byte for byte (its payload after the tag) so a round trip loses nothing. */
export interface RawField {
  field: number;
  wire: number;
  bytes: Uint8Array;
}

/** One decoded field: `value` is a bigint for varints, a byte view for LEN, a DataView-backed number for I32/I64. */
export interface ProtoField {
  field: number;
  wire: number;
  varint: bigint;
  bytes: Uint8Array;
  /** Raw payload bytes after the tag (for keeping unknown fields). */
  payload: Uint8Array;
}

export class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  private varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new ModelError('Truncated protobuf varint: the file ends inside a number; the model file is cut short or not an ONNX model');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new ModelError('Malformed protobuf varint longer than 10 bytes; the file is not an ONNX model');
    }
  }

  /** Iterates the fields of this message. */
  *fields(): Generator<ProtoField> {
    while (this.pos < this.buf.length) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      const start = this.pos;
      let varint = 0n;
      let bytes: Uint8Array = EMPTY;
      switch (wire) {
        case WIRE.varint: varint = this.varint(); break;
        case WIRE.i64: bytes = this.take(8); break;
        case WIRE.i32: bytes = this.take(4); break;
        case WIRE.len: {
          const n = Number(this.varint());
          bytes = this.take(n);
          break;
        }
        default:
          throw new ModelError(`Unsupported protobuf wire type ${wire} for field ${field} at byte ${start}; the file is not an ONNX model or is corrupt`);
      }
      yield { field, wire, varint, bytes, payload: this.buf.subarray(start, this.pos) };
    }
  }

  /** The payload of a packed repeated varint field. */
  *varints(): Generator<bigint> {
    while (this.pos < this.buf.length) yield this.varint();
  }

  private take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new ModelError(`Truncated protobuf field: wanted ${n} bytes at ${this.pos} but the message has ${this.buf.length - this.pos} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

const EMPTY = new Uint8Array(0);

/** Signed 64-bit integer of a varint field as a JS number (ONNX dims and attribute ints fit in 53 bits). */
export function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

export function toStr(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

export function toFloat(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
}

/** Repeated varint field: packed (LEN) or one value per occurrence; both are valid on the wire. */
export function readInts(f: ProtoField, out: number[]): void {
  if (f.wire === WIRE.varint) {
    out.push(toInt(f.varint));
    return;
  }
  for (const inner of new ProtoReader(f.bytes).varints()) out.push(toInt(inner));
}

export function readFloats(f: ProtoField, out: number[]): void {
  if (f.wire === WIRE.i32) {
    out.push(toFloat(f.bytes));
    return;
  }
  const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  for (let i = 0; i + 4 <= f.bytes.byteLength; i += 4) out.push(dv.getFloat32(i, true));
}
