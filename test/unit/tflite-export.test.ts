/** TFLite writer and ONNX→TFLite mapping on small synthetic graphs, checked against onnxruntime in LiteRT.js. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatBufferBuilder } from '../../fleet-server/src/export/flatbuffer.js';
import { exportTflite } from '../../fleet-server/src/export/tflite/export.js';
import { asymmetric } from '../../fleet-server/src/export/tflite/int8.js';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph, floatTensor, int64Tensor, type OnnxNode } from '../../fleet-server/src/convert/onnx/model.js';
import { TfliteAdapter } from '../../platform-adapters/tflite/adapter.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { EdgeFleetError } from '../../agent/src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-tflite-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('FlatBufferBuilder: root offset, file identifier, vtable and fields read back per the format', () => {
  const b = new FlatBufferBuilder();
  const name = b.string('abc');
  const vec = b.int32Vector([7, -8, 9]);
  b.startTable(3);
  b.fieldInt32(0, 42);
  b.fieldOffset(1, name);
  b.fieldOffset(2, vec);
  const bytes = b.finish(b.endTable(), 'TFL3');
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(new TextDecoder().decode(bytes.subarray(4, 8)), 'TFL3');
  const table = dv.getUint32(0, true);
  const vtable = table - dv.getInt32(table, true);
  const field = (id: number): number => dv.getUint16(vtable + 4 + 2 * id, true);
  assert.equal(dv.getUint16(vtable, true), 4 + 2 * 3);
  assert.equal(dv.getInt32(table + field(0), true), 42);
  const s = table + field(1) + dv.getUint32(table + field(1), true);
  assert.equal(new TextDecoder().decode(bytes.subarray(s + 4, s + 4 + dv.getUint32(s, true))), 'abc');
  assert.equal(bytes[s + 4 + 3], 0, 'strings end with NUL');
  const v = table + field(2) + dv.getUint32(table + field(2), true);
  assert.deepEqual([0, 1, 2].map((i) => dv.getInt32(v + 4 + 4 * i, true)), [7, -8, 9]);
});

/** NHWC in → Transpose → Conv (3x3 stride 2, asymmetric pads) → Relu → depthwise Conv (SAME) → Clip(0,6) + scalar Mul → Transpose back. */
function tinyModel(): Uint8Array {
  const g = emptyGraph('tiny');
  g.inputs.push({ name: 'x', elemType: 1, shape: [1, 9, 9, 3] });
  g.outputs.push({ name: 'y', elemType: 1, shape: [1, 4, 4, 4] }, { name: 'flat', elemType: 1, shape: [1, 64] });
  const w1 = Array.from({ length: 4 * 3 * 3 * 3 }, (_, k) => Math.sin(k) * 0.5);
  const w2 = Array.from({ length: 4 * 1 * 3 * 3 }, (_, k) => Math.cos(k) * 0.7);
  g.initializers.set('w1', floatTensor([4, 3, 3, 3], w1)).set('b1', floatTensor([4], [0.1, -0.2, 0.3, 0]));
  g.initializers.set('w2', floatTensor([4, 1, 3, 3], w2)).set('b2', floatTensor([4], [0, 0.5, -0.5, 1]));
  g.initializers.set('lo', floatTensor([], [0])).set('hi', floatTensor([], [6])).set('k', floatTensor([], [0.25])).set('shape', int64Tensor([2], [1, -1]));
  const n = (opType: string, inputs: string[], outputs: string[], attributes: OnnxNode['attributes'] = []): OnnxNode => ({ opType, name: outputs[0], inputs, outputs, attributes });
  g.nodes.push(
    n('Transpose', ['x'], ['xc'], [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }]),
    n('Conv', ['xc', 'w1', 'b1'], ['c1'], [{ name: 'strides', type: 'ints', value: [2, 2] }, { name: 'pads', type: 'ints', value: [0, 1, 1, 0] }]),
    n('Relu', ['c1'], ['r1']),
    n('Conv', ['r1', 'w2', 'b2'], ['c2'], [{ name: 'group', type: 'int', value: 4 }, { name: 'auto_pad', type: 'string', value: 'SAME_UPPER' }]),
    n('Clip', ['c2', 'lo', 'hi'], ['r2']),
    n('Mul', ['r2', 'k'], ['m']),
    n('Transpose', ['m'], ['y'], [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }]),
    n('Reshape', ['m', 'shape'], ['flat']),
  );
  return encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g });
}

test('ONNX→TFLite: conv/depthwise/pads/clip/scalar mul/reshape match onnxruntime; Transpose pairs fold away', async () => {
  const onnx = tinyModel();
  const onnxPath = join(dir, 'tiny.onnx');
  writeFileSync(onnxPath, onnx);
  const x = Float32Array.from({ length: 9 * 9 * 3 }, (_, k) => ((k * 37) % 23) / 7 - 1.5);
  for (const precision of ['fp32', 'fp16'] as const) {
    const r = exportTflite(onnx, { precision });
    assert.equal(r.transposesRemoved, 2);
    assert.equal(r.transposesLeft, 1, 'only the Reshape of an NCHW value needs a real TRANSPOSE');
    const path = join(dir, `tiny-${precision}.tflite`);
    writeFileSync(path, r.bytes);
    const tfl = await new TfliteAdapter().createSession({ modelPath: path });
    const ort = await new OrtAdapter().createSession({ modelPath: onnxPath });
    const a = await ort.run({ x: { type: 'float32', dims: [1, 9, 9, 3], data: x.slice() } });
    const b = await tfl.run({ x: { type: 'float32', dims: [1, 9, 9, 3], data: x.slice() } });
    for (const name of ['y', 'flat']) {
      assert.deepEqual(b.outputs[name].dims, a.outputs[name].dims);
      const p = a.outputs[name].data as Float32Array, q = b.outputs[name].data as Float32Array;
      const tol = precision === 'fp32' ? 1e-5 : 5e-3;
      p.forEach((v, i) => assert.ok(Math.abs(v - q[i]) <= tol, `${precision} ${name}[${i}]: ${v} vs ${q[i]}`));
    }
    await tfl.dispose();
    await ort.dispose();
  }
});

test('unsupported ops drop the outputs that need them, and say which op', () => {
  const g = emptyGraph('topk');
  g.inputs.push({ name: 'x', elemType: 1, shape: [1, 10] });
  g.outputs.push({ name: 'v', elemType: 1, shape: [1, 3] }, { name: 'r', elemType: 1, shape: [1, 10] });
  g.initializers.set('k', int64Tensor([1], [3]));
  g.nodes.push({ opType: 'TopK', name: 'topk', inputs: ['x', 'k'], outputs: ['v', 'i'], attributes: [] }, { opType: 'Relu', name: 'relu', inputs: ['x'], outputs: ['r'], attributes: [] });
  const bytes = encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g });
  const r = exportTflite(bytes, { precision: 'fp32' });
  assert.deepEqual(r.outputs.map((o) => o.name), ['r']);
  assert.match(r.dropped[0].reason, /TopK \(topk\) has no TFLite mapping/);
  assert.throws(() => exportTflite(bytes, { precision: 'fp32', outputs: ['v'] }), (e: unknown) => e instanceof EdgeFleetError && /No output/.test(e.message));
  assert.throws(() => exportTflite(bytes, { precision: 'int8' }), /calibration ranges/);
});

test('int8 activation parameters hold 0 exactly and cover the range', () => {
  const p = asymmetric({ min: -1, max: 3 });
  assert.ok(Math.abs(p.scale - 4 / 255) < 1e-12);
  assert.equal(p.zp, -64);
  assert.equal(asymmetric({ min: 0, max: 6 }).zp, -128);
  assert.equal(asymmetric({ min: 2, max: 6 }).zp, -128, 'a positive range is widened down to 0');
});
