/** Core ML `.mlmodel` writer/decoder and reference evaluator on a small hand-made layer list. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMlModel, encodeMlModel, SPEC_VERSION } from '../../fleet-server/src/export/coreml/proto.js';
import { evaluateCoreml } from '../../fleet-server/src/export/coreml/reference.js';
import type { CmlModel } from '../../fleet-server/src/export/coreml/layers.js';
import { ProtoReader } from '../../fleet-server/src/convert/onnx/wire.js';
import { CoreMlAdapter } from '../../platform-adapters/coreml/adapter.js';

function model(precision: CmlModel['precision']): CmlModel {
  return {
    precision, metadata: { note: 'unit' },
    inputs: [{ name: 'x', shape: [1, 3, 3] }], outputs: [{ name: 'y', shape: [3, 2, 2] }],
    layers: [
      // 2x2 valid conv, 1 → 2 channels, weights [2,1,2,2].
      { kind: 'conv', name: 'c', input: 'x', output: 'c', outC: 2, kernelC: 1, groups: 1, kernel: [2, 2], stride: [1, 1], same: false,
        weights: { values: Float32Array.from([1, 0, 0, 1, -1, 0.5, 0.25, 2]), channels: 2 }, bias: { values: Float32Array.from([0.5, -1]), channels: 2 } },
      { kind: 'activation', name: 'r', input: 'c', output: 'r', fn: 'relu' },
      { kind: 'const', name: 'k', output: 'k', shape: [1, 2, 2], data: { values: Float32Array.from([1, 2, 3, 4]), channels: 1 } },
      { kind: 'concat', name: 'y', inputs: ['r', 'k'], output: 'y' },
    ],
  };
}

test('writes Model{specificationVersion 1, description 2, neuralNetwork 500} and decodes it back', () => {
  const bytes = encodeMlModel(model('fp32'));
  const top = [...new ProtoReader(bytes).fields()].map((f) => f.field);
  assert.deepEqual(top, [1, 2, 500]);
  const m = decodeMlModel(bytes);
  assert.equal(m.specificationVersion, SPEC_VERSION);
  assert.deepEqual(m.inputs, [{ name: 'x', shape: [1, 3, 3] }]);
  assert.deepEqual(m.layers.map((l) => l.kind), ['conv', 'activation', 'const', 'concat']);
  assert.equal(m.metadata.note, 'unit');
});

test('reference evaluation of conv + relu + const + concat', () => {
  const x = { shape: [1, 3, 3] as [number, number, number], data: Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
  const y = evaluateCoreml(decodeMlModel(encodeMlModel(model('fp32'))), { x }).y;
  assert.deepEqual(y.shape, [3, 2, 2]);
  // channel 0: x[i][j] + x[i+1][j+1] + 0.5; channel 1: relu(-x + 0.5 x' + 0.25 x'' + 2 x''' - 1)
  assert.deepEqual(Array.from(y.data.slice(0, 4)), [6.5, 8.5, 12.5, 14.5]);
  assert.deepEqual(Array.from(y.data.slice(4, 8)), [10, 11.75, 15.25, 17]);
  assert.deepEqual(Array.from(y.data.slice(8)), [1, 2, 3, 4]);
});

test('fp16 and 8-bit linear weights decode within their step', () => {
  const ref = model('fp32').layers[0] as Extract<CmlModel['layers'][number], { kind: 'conv' }>;
  for (const precision of ['fp16', 'int8'] as const) {
    const conv = decodeMlModel(encodeMlModel(model(precision))).layers[0] as typeof ref;
    ref.weights.values.forEach((v, i) => {
      const step = precision === 'fp16' ? Math.abs(v) * 2 ** -10 : 3 / 255; // channel 1 spans -1..2
      assert.ok(Math.abs(conv.weights.values[i] - v) <= step / 2 + 1e-7, `${precision} weight ${i}: ${conv.weights.values[i]} vs ${v}`);
    });
  }
  assert.ok(encodeMlModel(model('int8')).length < encodeMlModel(model('fp32')).length + 64);
});

test('the Core ML adapter probes unavailable off Apple and refuses sessions with the reason', async () => {
  const a = new CoreMlAdapter('linux');
  assert.equal((await a.probe()).available, false);
  await assert.rejects(a.createSession({ modelPath: 'x.mlmodel' }), /Core ML runs only on Apple/);
});
