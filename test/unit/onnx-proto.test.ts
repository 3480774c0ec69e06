/**
 * Our protobuf/ONNX codec: in-memory model → bytes → model round trips, typed *_data tensor fields
 * are read, and a real third-party ONNX file survives read → write with identical outputs in onnxruntime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, emptyGraph, floatTensor, int64Tensor, tensorToFloat32, tensorToInts, type OnnxModel } from '../../fleet-server/src/convert/onnx/model.js';
import { ProtoWriter } from '../../fleet-server/src/convert/onnx/wire.js';
import { cancelTransposes, compactNames } from '../../fleet-server/src/convert/onnx/passes.js';

function tinyModel(): OnnxModel {
  const graph = emptyGraph('tiny');
  graph.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [1, 4, 4, 3] });
  graph.outputs.push({ name: 'y', elemType: DataType.FLOAT, shape: [1, 4, 4, 3] });
  graph.valueInfo.push({ name: 't', elemType: DataType.FLOAT, shape: ['batch', 3, null, 4] });
  graph.initializers.set('k', floatTensor([3], [0.5, -2, 3.25]));
  graph.initializers.set('shape', int64Tensor([2], [-1, 2n ** 62n]));
  graph.nodes.push(
    { opType: 'Transpose', name: 'to_nchw', inputs: ['x'], outputs: ['t'], attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }] },
    { opType: 'Transpose', name: 'to_nhwc', inputs: ['t'], outputs: ['u'], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
    { opType: 'Mul', name: 'scale', inputs: ['u', 'k'], outputs: ['y'], attributes: [
      { name: 'f', type: 'float', value: 1.5 }, { name: 'i', type: 'int', value: -7 }, { name: 's', type: 'string', value: 'ünï' },
      { name: 'fs', type: 'floats', value: [1, -0.25] }, { name: 'ss', type: 'strings', value: ['a', ''] },
      { name: 't', type: 'tensor', value: floatTensor([1], [9]) },
    ] },
  );
  return { irVersion: 8, opsetImports: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], producerName: 'test', modelVersion: 3, metadataProps: { a: 'b' }, graph };
}

test('ONNX codec: in-memory model → bytes → model is lossless', () => {
  const m = tinyModel();
  const back = decodeModel(encodeModel(m));
  assert.deepEqual(back, m);
  assert.deepEqual(Array.from(tensorToFloat32(back.graph.initializers.get('k')!)), [0.5, -2, 3.25]);
  assert.deepEqual(tensorToInts(back.graph.initializers.get('shape')!), [-1, 2 ** 62]);
  // encode(decode(bytes)) is byte-identical for our own output
  assert.deepEqual(encodeModel(back), encodeModel(m));
});

test('ONNX codec: typed float_data / int64_data (packed and unpacked) are read into raw bytes', () => {
  const tensor = (w: ProtoWriter, dt: number, fill: (t: ProtoWriter) => void) => w.message(5, (t) => { t.packedInts(1, [2]).int(2, dt).string(8, `t${dt}`); fill(t); });
  const graph = new ProtoWriter().string(2, 'g');
  tensor(graph, DataType.FLOAT, (t) => t.packedFloats(4, [1.5, -3]));
  tensor(graph, DataType.INT64, (t) => t.int(7, -5).int(7, 6)); // unpacked repeated
  tensor(graph, DataType.INT32, (t) => t.packedInts(5, [7, -8]));
  const bytes = new ProtoWriter().int(1, 8).message(7, (g) => { const inner = graph.finish(); for (const f of decodeFields(inner)) g.raw(f); }).finish();
  const m = decodeModel(bytes);
  assert.deepEqual(Array.from(tensorToFloat32(m.graph.initializers.get('t1')!)), [1.5, -3]);
  assert.deepEqual(tensorToInts(m.graph.initializers.get('t7')!), [-5, 6]);
  assert.deepEqual(tensorToInts(m.graph.initializers.get('t6')!), [7, -8]);
});

function decodeFields(bytes: Uint8Array) {
  // The graph writer above produced whole fields; re-emit them with their tags.
  const out: { field: number; wire: number; bytes: Uint8Array }[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const key = bytes[pos++];
    let len = 0; let shift = 0; const start = pos;
    for (;;) { const b = bytes[pos++]; len |= (b & 0x7f) << shift; if (!(b & 0x80)) break; shift += 7; }
    pos += len;
    out.push({ field: key >> 3, wire: key & 7, bytes: bytes.subarray(start, pos) });
  }
  return out;
}

test('ONNX codec: transpose pairs that cancel are removed', () => {
  const m = tinyModel();
  assert.equal(cancelTransposes(m.graph), 1);
  assert.deepEqual(m.graph.nodes.map((n) => n.opType), ['Mul']);
  assert.deepEqual(m.graph.nodes[0].inputs, ['x', 'k']);
});

const REAL = 'assets/models/blazeface-back/model.onnx';

/** Both files of REAL's model give bit-identical outputs on one synthetic frame. */
async function assertSameOutputs(a: Uint8Array, b: Uint8Array): Promise<void> {
  const input = new Float32Array(256 * 256 * 3).map((_, i) => ((i * 7919) % 255) / 127.5 - 1);
  const results = [];
  for (const bytes of [a, b]) {
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    results.push(await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, [1, 256, 256, 3]) }));
    await s.release();
  }
  for (const name of Object.keys(results[0])) assert.deepEqual(results[1][name].data, results[0][name].data, name);
}
test('ONNX codec: a real ONNX model read and rewritten gives the same outputs', { skip: existsSync(REAL) ? false : `${REAL} missing; run scripts/setup.sh` }, async () => {
  const original = new Uint8Array(readFileSync(REAL));
  const model = decodeModel(original);
  assert.ok(model.graph.nodes.length > 10 && model.graph.initializers.size > 10);
  const rewritten = encodeModel(model);
  assert.deepEqual(decodeModel(rewritten).graph.nodes, model.graph.nodes);
  await assertSameOutputs(original, rewritten);
});

test('compactNames: short value names and dropped node names, the same outputs; graph inputs and outputs keep theirs', { skip: existsSync(REAL) ? false : `${REAL} missing; run scripts/setup.sh` }, async () => {
  const original = new Uint8Array(readFileSync(REAL));
  const model = decodeModel(original);
  const io = [...model.graph.inputs, ...model.graph.outputs].map((v) => v.name);
  const renamed = compactNames(model.graph, (n) => n.opType !== 'Conv');
  assert.ok(renamed > 100, `${renamed} values renamed`);
  assert.deepEqual([...model.graph.inputs, ...model.graph.outputs].map((v) => v.name), io);
  const values = new Set([...model.graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs]), ...model.graph.initializers.keys()]);
  for (const v of values) assert.ok(io.includes(v) || /^[0-9a-z]{1,3}$/.test(v), `${v} is short`);
  assert.ok(model.graph.nodes.every((n) => (n.opType === 'Conv') === (n.name !== '')), 'only the Convs keep their names');
  const bytes = encodeModel(model);
  assert.ok(bytes.length < original.length * 0.93, `${bytes.length} bytes against ${original.length}`);
  await assertSameOutputs(original, bytes);
});

test('compactNames: a generated name never takes a kept one, and a graph with subgraphs is left alone', () => {
  const m = tinyModel();
  m.graph.inputs[0].name = '0';
  m.graph.nodes[0].inputs[0] = '0';
  assert.equal(compactNames(m.graph), 4, 't, u and the initializers k and shape');
  assert.deepEqual(m.graph.nodes.map((n) => [n.inputs, n.outputs]), [[['0'], ['1']], [['1'], ['2']], [['2', '3'], ['y']]]);
  assert.deepEqual([...m.graph.initializers.keys()].sort(), ['3', '4'], 'k read by Mul, then the unread shape');
  assert.equal(m.graph.valueInfo[0].name, '1', 'value_info follows its value');
  const withBody = tinyModel();
  withBody.graph.nodes.push({ opType: 'If', name: 'branch', inputs: ['c'], outputs: ['z'], attributes: [{ name: 'then_branch', type: 'graph', value: emptyGraph('then') }] });
  assert.equal(compactNames(withBody.graph), 0);
  assert.equal(withBody.graph.nodes[0].outputs[0], 't');
});

test('tensor data read from a Buffer view gives its own bytes, not the start of the file', async () => {
  const { tensorToFloat32 } = await import('../../fleet-server/src/convert/onnx/model.js');
  const file = Buffer.alloc(64);
  file.writeFloatLE(3.5, 16);
  file.writeFloatLE(-2, 20);
  const t = { name: 'w', dims: [2], dataType: 1, data: file.subarray(16, 24) };
  assert.deepEqual([...tensorToFloat32(t as Parameters<typeof tensorToFloat32>[0])], [3.5, -2]);
});
