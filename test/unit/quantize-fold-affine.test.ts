/**
 * fold-affine.ts: a BatchNormalization after a Conv, and a scalar Mul (with a scalar Add after it, as
 * PP-LCNetV3's learnable affine blocks are exported) fold into the Conv; a Div by a scalar becomes a
 * Mul. The float function is unchanged and the source model is left as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel, type OnnxNode } from '../../fleet-server/src/convert/onnx/model.js';
import { foldAffineIntoConvs } from '../../fleet-server/src/quantize/fold-affine.js';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}

const pads = { name: 'pads', type: 'ints' as const, value: [1, 1, 1, 1] };

/** x → Conv → BN → Relu → Conv → ×0.7 → +0.2 → /6 → y, and a Conv whose output is also a graph output (left alone) → ×3 → z. */
function model(): OnnxModel {
  const r = rand(3);
  const init = new Map([
    ['w1', floatTensor([4, 3, 3, 3], Array.from({ length: 108 }, () => r()))],
    ['b1', floatTensor([4], [0.1, -0.2, 0.3, 0])],
    ['bn_s', floatTensor([4], [1.5, 0.5, 2, 1])], ['bn_b', floatTensor([4], [0.1, 0, -0.3, 0.2])],
    ['bn_m', floatTensor([4], [0.05, -0.1, 0.2, 0])], ['bn_v', floatTensor([4], [0.5, 2, 0.01, 1])],
    ['w2', floatTensor([2, 4, 3, 3], Array.from({ length: 72 }, () => r()))],
    ['w3', floatTensor([2, 4, 3, 3], Array.from({ length: 72 }, () => r()))],
    ['a', floatTensor([1], [0.7])], ['k', floatTensor([], [0.2])], ['six', floatTensor([], [6])], ['three', floatTensor([], [3])],
  ]);
  const nodes: OnnxNode[] = [
    { opType: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['c1o'], attributes: [pads] },
    { opType: 'BatchNormalization', name: 'bn', inputs: ['c1o', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], outputs: ['bno'], attributes: [{ name: 'epsilon', type: 'float', value: 1e-3 }] },
    { opType: 'Relu', name: 'r', inputs: ['bno'], outputs: ['ro'], attributes: [] },
    { opType: 'Conv', name: 'c2', inputs: ['ro', 'w2'], outputs: ['c2o'], attributes: [pads] },
    { opType: 'Mul', name: 'lab_a', inputs: ['a', 'c2o'], outputs: ['mo'], attributes: [] },
    { opType: 'Add', name: 'lab_b', inputs: ['mo', 'k'], outputs: ['ao'], attributes: [] },
    { opType: 'Div', name: 'div', inputs: ['ao', 'six'], outputs: ['y'], attributes: [] },
    { opType: 'Conv', name: 'c3', inputs: ['ro', 'w3'], outputs: ['c3o'], attributes: [pads] },
    { opType: 'Mul', name: 'm3', inputs: ['c3o', 'three'], outputs: ['z'], attributes: [] },
  ];
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name: 'affine', initializers: init, nodes, valueInfo: [],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 2, 8, 8] }, { name: 'z', elemType: DataType.FLOAT, shape: [1, 2, 8, 8] }, { name: 'c3o', elemType: DataType.FLOAT, shape: [1, 2, 8, 8] }],
    },
  };
}

async function run(m: OnnxModel): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  try {
    const input = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.cos(i * 0.29) * 2);
    const out = await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
    return { y: out.y.data as Float32Array, z: out.z.data as Float32Array, c3o: out.c3o.data as Float32Array };
  } finally {
    await s.release();
  }
}

test('BatchNormalization and a scalar Mul + Add fold into the Conv before them, a Div by a scalar becomes a Mul; the output is unchanged', async () => {
  const source = model();
  const before = encodeModel(source);
  const { model: folded, report } = foldAffineIntoConvs(source);
  assert.deepEqual(report, { batchNorms: 1, scalarAffines: 2, divisions: 1 }, 'the /6 became a ×1/6 right after the folded Add, so it folded too');
  assert.deepEqual(folded.graph.nodes.map((n) => n.opType), ['Conv', 'Relu', 'Conv', 'Conv', 'Mul']);
  const c1 = folded.graph.nodes[0], c2 = folded.graph.nodes[2];
  assert.deepEqual([c1.outputs, c2.outputs], [['bno'], ['y']], 'each Conv writes what the last folded node wrote');
  // c3's output is a graph output too: the ×3 after it stays, and so do its weights.
  assert.deepEqual([folded.graph.nodes[3].inputs[1], folded.graph.nodes[3].outputs], ['w3', ['c3o']]);
  assert.ok(!folded.graph.initializers.has('w2') && !folded.graph.initializers.has('bn_v'), 'the replaced weights and the BN parameters are dropped');
  assert.deepEqual(encodeModel(source), before, 'the source model is not changed');
  const [a, b] = [await run(source), await run(folded)];
  for (const k of ['y', 'z', 'c3o']) {
    let err = 0, peak = 0;
    for (let i = 0; i < a[k].length; i++) { err = Math.max(err, Math.abs(a[k][i] - b[k][i])); peak = Math.max(peak, Math.abs(a[k][i])); }
    assert.ok(peak > 0.1 && err <= 1e-5 * peak, `${k}: max |before − after| ${err}, peak ${peak}`);
  }
});

test('what must not fold stays: a Conv output read twice, a constant divided by a tensor, an excluded node, a training-mode BatchNormalization; a depthwise Conv without bias takes its BN (default epsilon)', async () => {
  const r = rand(5);
  const init = new Map([
    ['wa', floatTensor([3, 1, 3, 3], Array.from({ length: 27 }, () => r()))],
    ['s', floatTensor([3], [2, 0.5, 1])], ['bb', floatTensor([3], [0.1, 0, -0.1])], ['mu', floatTensor([3], [0.2, -0.1, 0])], ['var', floatTensor([3], [0.001, 4, 1])],
    ['wb', floatTensor([2, 3, 3, 3], Array.from({ length: 54 }, () => r()))],
    ['wc', floatTensor([2, 3, 3, 3], Array.from({ length: 54 }, () => r()))],
    ['two', floatTensor([], [2])], ['half', floatTensor([1, 1, 1, 1], [0.5])], ['six', floatTensor([], [6])],
  ]);
  const nodes: OnnxNode[] = [
    { opType: 'Conv', name: 'ca', inputs: ['x', 'wa'], outputs: ['cao'], attributes: [pads, { name: 'group', type: 'int', value: 3 }] },
    { opType: 'BatchNormalization', name: 'bna', inputs: ['cao', 's', 'bb', 'mu', 'var'], outputs: ['ya'], attributes: [] },
    { opType: 'Conv', name: 'cb', inputs: ['x', 'wb'], outputs: ['cbo'], attributes: [pads] },
    { opType: 'Mul', name: 'mb', inputs: ['cbo', 'two'], outputs: ['yb'], attributes: [] },
    { opType: 'Relu', name: 'rb', inputs: ['cbo'], outputs: ['yb2'], attributes: [] },
    { opType: 'Div', name: 'dz', inputs: ['six', 'x'], outputs: ['yz'], attributes: [] },
    { opType: 'Conv', name: 'cc', inputs: ['x', 'wc'], outputs: ['cco'], attributes: [pads] },
    { opType: 'Mul', name: 'mc', inputs: ['cco', 'half'], outputs: ['yc'], attributes: [] },
  ];
  const outs = ['ya', 'yb', 'yb2', 'yz', 'yc'];
  const m: OnnxModel = {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: { name: 'stays', initializers: init, nodes, valueInfo: [], inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }], outputs: outs.map((name) => ({ name, elemType: DataType.FLOAT })) },
  };
  const { model: folded, report } = foldAffineIntoConvs(m, new Set(['mc']));
  assert.deepEqual(report, { batchNorms: 1, scalarAffines: 0, divisions: 0 });
  assert.deepEqual(folded.graph.nodes.map((n) => n.name), ['ca', 'cb', 'mb', 'rb', 'dz', 'cc', 'mc']);
  assert.equal(folded.graph.nodes.find((n) => n.name === 'dz')!.opType, 'Div', '6 / x is not a multiplication');
  const run2 = async (x: OnnxModel) => {
    const s = await ort.InferenceSession.create(encodeModel(x));
    try {
      const input = Float32Array.from({ length: 3 * 64 }, (_, i) => 0.5 + Math.abs(Math.sin(i * 0.41)));
      const o = await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
      return outs.map((k) => o[k].data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const [a, b] = [await run2(m), await run2(folded)];
  outs.forEach((k, j) => {
    let err = 0, peak = 0;
    for (let i = 0; i < a[j].length; i++) { err = Math.max(err, Math.abs(a[j][i] - b[j][i])); peak = Math.max(peak, Math.abs(a[j][i])); }
    assert.ok(peak > 0.1 && err <= 1e-5 * peak, `${k}: max |before − after| ${err}, peak ${peak}`);
  });
  // BatchNormalization in training mode normalizes with the batch's statistics: not foldable.
  const training = structuredClone(m);
  training.graph.nodes[1].attributes = [{ name: 'training_mode', type: 'int', value: 1 }];
  assert.equal(foldAffineIntoConvs(training).report.batchNorms, 0);
});
