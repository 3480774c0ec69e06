/**
 * A minimal FlatBuffers builder (back to front, like the reference implementation), enough for
 * TFLite models. Format facts from the FlatBuffers internals guide
 * (https://flatbuffers.dev/internals/): a table starts with an soffset32 to its vtable (vtable
 * address = table address - soffset); the vtable is [vtable bytes u16, table bytes u16, field
 * offsets u16...]; references to tables, vectors and strings are uoffset32 forward from where they
 * are stored; vectors and strings are a u32 length then the elements (strings add a NUL); the root
 * is a uoffset32 at byte 0, followed by the 4-byte file identifier when the schema has one.
 */

/** Offsets are counted from the end of the buffer, as the builder writes backwards. */
export type FbOffset = number;

export class FlatBufferBuilder {
  private bb = new Uint8Array(1 << 16);
  private space = this.bb.length;
  private minAlign = 1;
  private vtable: number[] | undefined;
  private objectStart = 0;

  offset(): FbOffset {
    return this.bb.length - this.space;
  }

  private grow(needed: number): void {
    while (this.space < needed) {
      const old = this.bb;
      const next = new Uint8Array(old.length * 2);
      next.set(old, old.length);
      this.space += old.length;
      this.bb = next;
    }
  }

  /** Pads so that, after `additional` more bytes, the write position is aligned to `size`. */
  prep(size: number, additional: number): void {
    if (size > this.minAlign) this.minAlign = size;
    const pad = (-(this.offset() + additional)) & (size - 1);
    this.grow(pad + size + additional);
    for (let i = 0; i < pad; i++) this.bb[--this.space] = 0;
  }

  private put(bytes: number, write: (dv: DataView, at: number) => void): void {
    this.space -= bytes;
    write(new DataView(this.bb.buffer), this.space);
  }

  int8(v: number): void { this.prep(1, 0); this.put(1, (d, a) => d.setInt8(a, v)); }
  int16(v: number): void { this.prep(2, 0); this.put(2, (d, a) => d.setInt16(a, v, true)); }
  int32(v: number): void { this.prep(4, 0); this.put(4, (d, a) => d.setInt32(a, v, true)); }
  int64(v: bigint): void { this.prep(8, 0); this.put(8, (d, a) => d.setBigInt64(a, v, true)); }
  float32(v: number): void { this.prep(4, 0); this.put(4, (d, a) => d.setFloat32(a, v, true)); }

  /** A uoffset32 to an object written earlier. */
  uoffset(target: FbOffset): void {
    this.prep(4, 0);
    const rel = this.offset() + 4 - target;
    this.put(4, (d, a) => d.setUint32(a, rel, true));
  }

  private vector(count: number, elemBytes: number, align: number, write: (i: number) => void): FbOffset {
    this.prep(4, count * elemBytes);
    this.prep(Math.max(align, elemBytes), count * elemBytes);
    for (let i = count - 1; i >= 0; i--) write(i);
    this.prep(4, 0);
    this.put(4, (d, a) => d.setUint32(a, count, true));
    return this.offset();
  }

  /** [ubyte]; TFLite buffers ask for 16-byte alignment (schema.fbs `force_align: 16`). */
  bytesVector(data: Uint8Array, align = 16): FbOffset {
    return this.vector(data.length, 1, align, (i) => { this.bb[--this.space] = data[i]; });
  }
  int32Vector(values: readonly number[]): FbOffset { return this.vector(values.length, 4, 4, (i) => this.put(4, (d, a) => d.setInt32(a, values[i], true))); }
  int64Vector(values: readonly number[]): FbOffset { return this.vector(values.length, 8, 8, (i) => this.put(8, (d, a) => d.setBigInt64(a, BigInt(values[i]), true))); }
  float32Vector(values: readonly number[]): FbOffset { return this.vector(values.length, 4, 4, (i) => this.put(4, (d, a) => d.setFloat32(a, values[i], true))); }
  offsetVector(offsets: readonly FbOffset[]): FbOffset { return this.vector(offsets.length, 4, 4, (i) => this.uoffset(offsets[i])); }

  string(s: string): FbOffset {
    const bytes = new TextEncoder().encode(s);
    this.prep(4, bytes.length + 1);
    this.bb[--this.space] = 0;
    for (let i = bytes.length - 1; i >= 0; i--) this.bb[--this.space] = bytes[i];
    this.put(4, (d, a) => d.setUint32(a, bytes.length, true));
    return this.offset();
  }

  startTable(fields: number): void {
    if (this.vtable) throw new Error('FlatBufferBuilder: tables cannot nest; build children first');
    this.vtable = new Array<number>(fields).fill(0);
    this.objectStart = this.offset();
  }

  private slot(id: number): void {
    if (!this.vtable || id >= this.vtable.length) throw new Error(`FlatBufferBuilder: field id ${id} outside the open table`);
    this.vtable[id] = this.offset();
  }

  fieldInt8(id: number, v: number): void { this.int8(v); this.slot(id); }
  fieldInt32(id: number, v: number): void { this.int32(v); this.slot(id); }
  fieldFloat32(id: number, v: number): void { this.float32(v); this.slot(id); }
  fieldOffset(id: number, target: FbOffset): void { this.uoffset(target); this.slot(id); }

  endTable(): FbOffset {
    if (!this.vtable) throw new Error('FlatBufferBuilder: endTable without startTable');
    this.int32(0); // soffset to the vtable, patched below
    const tableOff = this.offset();
    let n = this.vtable.length;
    while (n > 0 && this.vtable[n - 1] === 0) n--;
    for (let i = n - 1; i >= 0; i--) this.int16(this.vtable[i] ? tableOff - this.vtable[i] : 0);
    this.int16(tableOff - this.objectStart);
    this.int16((n + 2) * 2);
    const vtableOff = this.offset();
    new DataView(this.bb.buffer).setInt32(this.bb.length - tableOff, vtableOff - tableOff, true);
    this.vtable = undefined;
    return tableOff;
  }

  /** Root offset, then the 4-byte file identifier when the schema declares one (TFLite: "TFL3"). */
  finish(root: FbOffset, identifier?: string): Uint8Array {
    this.prep(Math.max(this.minAlign, 4), identifier === undefined ? 4 : 8);
    if (identifier !== undefined) for (let i = 3; i >= 0; i--) this.int8(identifier.charCodeAt(i));
    this.uoffset(root);
    return this.bb.slice(this.space);
  }
}
