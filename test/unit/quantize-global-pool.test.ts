/**
 * Spatial ReduceMean → GlobalAveragePool (global-pool.ts): NCHW and NHWC (TensorFlow-converted) means
 * of a Conv's feature map become pools with the same outputs in onnxruntime; means that are not global
 * pools of a known 4-D map (a graph input of unknown rank, keepdims 0, channel axis) stay; and the QDQ
 * build then quantizes the pool (DequantizeLinear in, QuantizeLinear out), which is what lets ORT fuse
 * it into QLinearGlobalAveragePool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel, type OnnxNode } from '../../fleet-server/src/convert/onnx/model.js';
import { spatialMeansToGlobalPool } from '../../fleet-server/src/quantize/global-pool.js';
import { insertQdq, planQuantization } from '../../fleet-server/src/quantize/qdq.js';

const OUTPUTS = ['nchw', 'nhwc', 'cat', 'input', 'flat', 'chan', 'y'];

function mean(name: string, input: string, axes: number[], keepdims = 1): OnnxNode {
  return { opType: 'ReduceMean', name, inputs: [input], outputs: [name], attributes: [{ name: 'axes', type: 'ints', value: axes }, { name: 'keepdims', type: 'int', value: keepdims }] };
}

function model(): OnnxModel {
  const w = Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.cos(i * 0.71));
  const w2 = Array.from({ length: 2 * 4 }, (_, i) => Math.sin(i + 1));
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name: 'pools', valueInfo: [],
      initializers: new Map([['w', floatTensor([4, 3, 3, 3], w)], ['b', floatTensor([4], [0.1, -0.2, 0.3, 0])], ['w2', floatTensor([2, 4, 1, 1], w2)]]),
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
      outputs: OUTPUTS.map((name) => ({ name, elemType: DataType.FLOAT, shape: [] })),
      nodes: [
        { opType: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: [{ name: 'pads', type: 'ints', value: [1, 1, 1, 1] }] },
        { opType: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'], attributes: [] },
        mean('nchw', 'r', [2, 3]),
        { opType: 'Transpose', name: 'to-nhwc', inputs: ['r'], outputs: ['t'], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
        mean('nhwc', 't', [-3, -2]),
        { opType: 'Concat', name: 'concat', inputs: ['r', 'c'], outputs: ['cc'], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
        mean('cat', 'cc', [2, 3]),
        mean('input', 'x', [2, 3]),
        mean('flat', 'r', [2, 3], 0),
        mean('chan', 'r', [1]),
        // A Conv after the pool, so the QDQ planner quantizes the pool (the head after the last Conv stays float).
        { opType: 'Conv', name: 'after', inputs: ['nchw', 'w2'], outputs: ['y'], attributes: [] },
      ],
    },
  };
}

async function run(m: OnnxModel): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  const x = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i * 0.37) * 2);
  const out = await s.run({ x: new ort.Tensor('float32', x, [1, 3, 8, 8]) });
  await s.release();
  return Object.fromEntries(OUTPUTS.map((o) => [o, out[o].data as Float32Array]));
}

test('spatial means of a Conv feature map become GlobalAveragePool with the same outputs; other means stay', async () => {
  const before = await run(model());
  const m = model();
  assert.equal(spatialMeansToGlobalPool(m), 3);
  const op = (name: string) => m.graph.nodes.find((n) => n.name === name)?.opType;
  assert.equal(op('nchw'), 'GlobalAveragePool');
  assert.equal(op('cat'), 'GlobalAveragePool', 'a Concat of 4-D maps is 4-D');
  assert.equal(op('nhwc'), 'GlobalAveragePool', 'the node keeps its name, so --exclude still finds it');
  assert.deepEqual(m.graph.nodes.filter((n) => n.name.startsWith('nhwc/')).map((n) => n.opType), ['Transpose', 'Transpose']);
  for (const name of ['input', 'flat', 'chan']) assert.equal(op(name), 'ReduceMean', `${name} is not a global pool of a known 4-D map`);
  const after = await run(m);
  for (const o of OUTPUTS) {
    assert.equal(after[o].length, before[o].length, o);
    after[o].forEach((v, k) => assert.ok(Math.abs(v - before[o][k]) <= 1e-6 * (1 + Math.abs(before[o][k])), `${o}[${k}]: ${v} vs ${before[o][k]}`));
  }
});

test('the QDQ build quantizes the pool: DequantizeLinear in, QuantizeLinear out', () => {
  const m = model();
  spatialMeansToGlobalPool(m);
  const plan = planQuantization(m, { target: 'cpu' });
  const ranges = new Map(plan.activations.map((t) => [t, { min: -3, max: 3 }]));
  const { model: q } = insertQdq(plan, ranges);
  const pool = q.graph.nodes.find((n) => n.name === 'nchw')!;
  const producer = q.graph.nodes.find((n) => n.outputs.includes(pool.inputs[0]));
  const consumers = q.graph.nodes.filter((n) => n.inputs.includes(pool.outputs[0]));
  assert.equal(producer?.opType, 'DequantizeLinear');
  assert.ok(consumers.length > 0 && consumers.every((c) => c.opType === 'QuantizeLinear'), `pool output read by ${consumers.map((c) => c.opType).join(', ')}`);
});
