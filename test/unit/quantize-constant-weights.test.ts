/**
 * Models whose weights are Constant nodes (paddle2onnx exports, such as the PP-OCRv4 text detector the
 * agent ships) and models whose every Conv reads the graph input. `model quantize` stopped on both with
 * onnxruntime's "'fetches' cannot be an empty array": GPTQ looked for Conv weights among the
 * initializers only, found none, and ran a session that fetched nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../fleet-server/src/convert/onnx/model.js';
import { constantsToInitializers } from '../../fleet-server/src/convert/onnx/passes.js';
import { quantizeModel } from '../../fleet-server/src/quantize/quantize.js';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}

const r = rand(11);
const W1 = floatTensor([4, 3, 3, 3], Array.from({ length: 108 }, () => r()));
const W2 = floatTensor([2, 4, 3, 3], Array.from({ length: 72 }, () => r()));
const constant = (out: string, a: OnnxNode['attributes'][number]): OnnxNode => ({ opType: 'Constant', name: `k-${out}`, inputs: [], outputs: [out], attributes: [a] });
const pads = { name: 'pads', type: 'ints' as const, value: [1, 1, 1, 1] };

/** x [1,3,8,8] → Conv → ReLU → Conv → ×k → Reshape [1,-1] → y, every constant a Constant node of another form; `n` is a Constant graph output. */
function constantModel(): OnnxModel {
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name: 'constants', initializers: new Map<string, OnnxTensor>(), valueInfo: [],
      nodes: [
        constant('w1', { name: 'value', type: 'tensor', value: W1 }),
        constant('b1', { name: 'value_floats', type: 'floats', value: [0.1, -0.2, 0.3, 0] }),
        constant('w2', { name: 'value', type: 'tensor', value: W2 }),
        constant('k', { name: 'value_float', type: 'float', value: 0.5 }),
        constant('shape', { name: 'value_ints', type: 'ints', value: [1, -1] }),
        constant('n', { name: 'value_int', type: 'int', value: 7 }),
        { opType: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['c1o'], attributes: [pads] },
        { opType: 'Relu', name: 'r1', inputs: ['c1o'], outputs: ['r1o'], attributes: [] },
        { opType: 'Conv', name: 'c2', inputs: ['r1o', 'w2'], outputs: ['c2o'], attributes: [pads] },
        { opType: 'Mul', name: 'm', inputs: ['c2o', 'k'], outputs: ['mo'], attributes: [] },
        { opType: 'Reshape', name: 'flat', inputs: ['mo', 'shape'], outputs: ['y'], attributes: [] },
      ],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 128] }, { name: 'n', elemType: DataType.INT64, shape: [] }],
    },
  };
}

const input = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i * 0.37) * 2);

async function run(bytes: Uint8Array): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    return await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
  } finally {
    await s.release();
  }
}

test('Constant nodes become initializers of the same names (every value form), the function unchanged; a Constant graph output stays a node', async () => {
  const before = encodeModel(constantModel());
  const m = decodeModel(before);
  assert.equal(constantsToInitializers(m.graph), 5);
  const g = m.graph;
  assert.deepEqual(g.nodes.filter((n) => n.opType === 'Constant').map((n) => n.outputs[0]), ['n']);
  assert.deepEqual([...g.initializers.keys()].sort(), ['b1', 'k', 'shape', 'w1', 'w2']);
  assert.deepEqual([g.initializers.get('w1')!.dims, g.initializers.get('w1')!.dataType], [[4, 3, 3, 3], DataType.FLOAT]);
  assert.deepEqual([g.initializers.get('b1')!.dims, g.initializers.get('k')!.dims], [[4], []]);
  assert.deepEqual([g.initializers.get('shape')!.dims, g.initializers.get('shape')!.dataType], [[2], DataType.INT64]);
  const [a, b] = [await run(before), await run(encodeModel(m))];
  assert.deepEqual(b.y.dims, [1, 128]);
  assert.deepEqual(Array.from(b.y.data as Float32Array), Array.from(a.y.data as Float32Array));
  assert.equal(b.n.data[0], 7n);
  assert.equal(constantsToInitializers(m.graph), 0, 'nothing left to fold');
});

test('model quantize rounds and stores Constant-node weights (GPTQ included), and a model whose one Conv reads the graph input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-qconst-'));
  try {
    const meta = {
      version: '1.0.0', task: 'detect', input: 'x', labels: ['thing'], decoder: { type: 'db', output: 'y' },
      preprocess: { width: 8, height: 8, layout: 'NCHW', channelOrder: 'RGB', resize: 'stretch', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], dtype: 'float32' },
    };
    const one: OnnxModel = {
      irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
      graph: {
        name: 'one', initializers: new Map([['w1', W1]]), valueInfo: [],
        nodes: [
          { opType: 'Conv', name: 'c1', inputs: ['x', 'w1'], outputs: ['c1o'], attributes: [pads] },
          { opType: 'Relu', name: 'r1', inputs: ['c1o'], outputs: ['y'], attributes: [] },
        ],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
        outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 4, 8, 8] }],
      },
    };
    for (const [name, model, convs] of [['constants', constantModel(), 2], ['one', one, 1]] as const) {
      const path = join(dir, `${name}.onnx`);
      writeFileSync(path, encodeModel(model));
      writeFileSync(join(dir, `${name}.meta.json`), JSON.stringify({ name, ...meta }));
      const out = join(dir, `${name}-int8.onnx`);
      const report = await quantizeModel({ modelPath: path, outputPath: out, frames: { source: 'assets/images/faces', maxFrames: 2 }, method: 'minmax', target: 'cpu' });
      assert.equal(report.prepared.gptqConvs, convs, `${name}: GPTQ rounded every Conv`);
      assert.equal(report.stats.quantizedWeights, convs, `${name}: every Conv's weights stored as int8`);
      const q = decodeModel(readFileSync(out));
      assert.equal(q.graph.nodes.filter((n) => n.opType === 'DequantizeLinear' && q.graph.initializers.get(n.inputs[0])?.dataType === DataType.INT8).length, convs);
      const [a, b] = [await run(encodeModel(model)), await run(readFileSync(out))];
      const fa = a.y.data as Float32Array, fb = b.y.data as Float32Array;
      let peak = 0, err = 0;
      for (let i = 0; i < fa.length; i++) { peak = Math.max(peak, Math.abs(fa[i])); err = Math.max(err, Math.abs(fa[i] - fb[i])); }
      assert.ok(err < 0.05 * peak, `${name}: max |float − int8| ${err} against a peak of ${peak}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
