/**
 * QDQ placement and channel equalization on a small synthetic graph (Conv → ReLU → Conv → Sigmoid
 * head): equalization leaves the float network's output unchanged; QDQ puts per-channel int8 weights
 * (axis 0), int32 biases, folds the ReLU into the Q on CPU, keeps the head float, and the quantized
 * model stays close to float in onnxruntime.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../fleet-server/src/convert/onnx/model.js';
import { equalize, findEqualizationPairs } from '../../fleet-server/src/quantize/equalize.js';
import { insertQdq, planQuantization, type QuantPlanOptions } from '../../fleet-server/src/quantize/qdq.js';
import { activationParamsU8, halfUp, holdPairs, quantizePerChannel, toHalf, weightGridFor } from '../../fleet-server/src/quantize/qmath.js';
import { activationSensitivity } from '../../fleet-server/src/quantize/sensitivity.js';
import { addToSnr, snrDb } from '../../fleet-server/src/quantize/snr.js';
import { constFloats } from '../helpers/onnx-consts.js';
import { int8CpuFlags, saturatesFullRangeInt8 } from '../../agent/src/model/int8-cpu.js';
import { calibrate } from '../../fleet-server/src/quantize/calibrate.js';
import { rangeFromHistogram } from '../../fleet-server/src/quantize/ranges.js';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}

function tinyModel(): OnnxModel {
  const r = rand(7);
  // Channel 0 of the first conv is 50× larger than the others: the case equalization exists for.
  const w1 = Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => r() * (i < 27 ? 50 : 1));
  const w2 = Array.from({ length: 2 * 4 }, () => r());
  const init = new Map([
    ['w1', floatTensor([4, 3, 3, 3], w1)], ['b1', floatTensor([4], [0.1, -0.2, 0.3, 0])],
    ['w2', floatTensor([2, 4, 1, 1], w2)], ['b2', floatTensor([2], [0.05, -0.05])],
  ]);
  return graphModel('tiny', init, [
    ...conv1Relu(),
    { opType: 'Conv', name: 'c2', inputs: ['r1o', 'w2', 'b2'], outputs: ['c2o'], attributes: [] },
    { opType: 'Sigmoid', name: 'head', inputs: ['c2o'], outputs: ['y'], attributes: [] },
  ]);
}

/** The first Conv (3 → 4, 3×3, padded) and its ReLU, fresh nodes for each test graph: x → c1o → r1o. */
function conv1Relu(): OnnxNode[] {
  return [
    { opType: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['c1o'], attributes: [{ name: 'pads', type: 'ints', value: [1, 1, 1, 1] }] },
    { opType: 'Relu', name: 'r1', inputs: ['c1o'], outputs: ['r1o'], attributes: [] },
  ];
}

/** A model from x [1,3,8,8] to y [1,2,8,8]. */
function graphModel(name: string, initializers: Map<string, OnnxTensor>, nodes: OnnxNode[]): OnnxModel {
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name, initializers, valueInfo: [], nodes,
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 2, 8, 8] }],
    },
  };
}

const input = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i * 0.37) * 2);

async function* frames() { yield { data: input, dims: [1, 3, 8, 8], dtype: 'float32' as const, transform: { srcWidth: 8, srcHeight: 8, dstWidth: 8, dstHeight: 8, contentWidth: 8, contentHeight: 8, padX: 0, padY: 0, scaleX: 1, scaleY: 1 } }; }

async function runModel(m: OnnxModel): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  const out = await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
  await s.release();
  return out.y.data as Float32Array;
}

test('channel equalization leaves the float output unchanged', async () => {
  const m = tinyModel();
  const pairs = findEqualizationPairs(m);
  assert.equal(pairs.length, 1);
  assert.equal(pairs[0].tensor, 'r1o');
  const eq = equalize(m, pairs, new Map([['r1o', Float64Array.of(40, 1, 0.5, 0)]]));
  assert.equal(eq.equalized, 1);
  const [a, b] = [await runModel(m), await runModel(eq.model)];
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `output ${i}: ${a[i]} vs ${b[i]}`);
});

test('QDQ placement: per-channel weights, float bias onnxruntime quantizes at load, ReLU folded on CPU, head float, output near float', async (t) => {
  const m = tinyModel();
  const plan = planQuantization(m, { target: 'cpu' });
  assert.equal(plan.foldedActivations, 1);
  assert.ok(plan.excluded.has('head'));
  // c2o feeds only the float head, so it stays float (no Q after the last Conv).
  assert.deepEqual(plan.activations.sort(), ['r1o', 'x']);
  const { model, stats } = insertQdq(plan, await minmaxRanges(m, plan.activations));
  assert.equal(stats.quantizedWeights, 2);
  assert.equal(stats.int32Biases, 1, 'c1 alone runs with an int32 bias; c2 adds its bias in float after the MatMul');
  const g = model.graph;
  assert.equal(g.nodes.filter((n) => n.opType === 'Relu').length, 0);
  const wdq = g.nodes.filter((n) => n.opType === 'DequantizeLinear' && g.initializers.get(n.inputs[0])?.dataType === DataType.INT8);
  assert.deepEqual(wdq.map((n) => g.initializers.get(n.inputs[0])!.dims), [[4, 3, 3, 3], [4, 2]], 'c1 as a Conv [O, I, kH, kW]; c2 (1×1, into the float head) as a MatMul [I, O]');
  assert.deepEqual(wdq.map((n) => n.attributes), [[{ name: 'axis', type: 'int', value: 0 }], [{ name: 'axis', type: 'int', value: 1 }]], 'per output channel either way');
  assert.ok(!g.nodes.some((n) => n.name === 'c2') && g.nodes.some((n) => n.opType === 'MatMul'), 'c2 runs as DQ → MatMul (onnxruntime: MatMulIntegerToFloat)');
  // Biases stay float (no int32 tensor, no stored bias scale): c1, which writes int8, reads its bias as
  // halves through a Cast; c2's bias, added in float after the MatMul, keeps float32.
  assert.ok(![...g.initializers.values()].some((x) => x.dataType === DataType.INT32), 'no int32 bias is stored');
  const c1 = g.nodes.find((n) => n.name === 'c1')!;
  const biasCast = g.nodes.find((n) => n.outputs[0] === c1.inputs[2]);
  assert.equal(biasCast?.opType, 'Cast');
  assert.equal(g.initializers.get(biasCast.inputs[0])?.dataType, DataType.FLOAT16);
  assert.deepEqual(Array.from(constFloats(g, c1.inputs[2])), [0.1, -0.2, 0.3, 0].map(toHalf));
  // onnxruntime quantizes that bias (its BiasQuantization) and fuses c1 into a QLinearConv: nothing runs in float there.
  const ops = (await optimizedNodes(model, t)).map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'QLinearConv').length, 1, `c1 runs in int8: ${ops.join(' ')}`);
  assert.ok(!ops.includes('Conv') && !ops.includes('FusedConv'), `no float Conv: ${ops.join(' ')}`);
  assert.equal(g.nodes.find((n) => n.opType === 'Sigmoid')?.inputs[0], 'c2o', 'the head reads the float conv output');
  assert.ok((model.opsetImports.find((o) => o.domain === '')?.version ?? 0) >= 13);
  const [a, b] = [await runModel(m), await runModel(model)];
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  assert.ok(err < 0.05, `max |float − int8| ${err}`);
});

test('--bias int32: an int8 Conv reads its bias as int32 through a DQ with scale sIn·sW[c], onnxruntime fuses it, and it computes what the float-bias build does', async (t) => {
  const m = tinyModel();
  const ranges = await minmaxRanges(m, planQuantization(m, { target: 'cpu' }).activations);
  const plain = insertQdq(planQuantization(m, { target: 'cpu' }), ranges).model;
  const { model, stats, params } = insertQdq(planQuantization(m, { target: 'cpu', bias: 'int32' }), ranges);
  assert.equal(stats.int32Biases, 1);
  const g = model.graph;
  const c1 = g.nodes.find((n) => n.name === 'c1')!;
  const bdq = g.nodes.find((n) => n.outputs[0] === c1.inputs[2])!;
  assert.equal(bdq.opType, 'DequantizeLinear');
  assert.deepEqual(bdq.attributes, [{ name: 'axis', type: 'int', value: 0 }]);
  const b32 = g.initializers.get(bdq.inputs[0])!;
  assert.equal(b32.dataType, DataType.INT32);
  const wdq = g.nodes.find((n) => n.outputs[0] === c1.inputs[1])!;
  const sIn = params.get('x')!.scale, sW = constFloats(g, wdq.inputs[1]), sB = constFloats(g, bdq.inputs[1]);
  assert.deepEqual(Array.from(sB), Array.from(sW, (s) => Math.fround(Math.fround(sIn) * s)), 'bias scale = sIn·sW[c] (float32)');
  const ints = Array.from(new Int32Array(b32.data.buffer, b32.data.byteOffset, 4));
  assert.deepEqual(ints, [0.1, -0.2, 0.3, 0].map((b, c) => Math.round(b / sB[c])), 'the float32 bias rounded to its steps');
  // c2 writes float into the head (a MatMul then a float Add): its bias stays float32 either way.
  assert.equal(g.initializers.get('b2')?.dataType, DataType.FLOAT);
  const ops = (await optimizedNodes(model, t)).map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'QLinearConv').length, 1, `c1 runs in int8: ${ops.join(' ')}`);
  // The default build, with c1 reading the float32 bias (not its halves): onnxruntime's int32 at load
  // are these integers, so the outputs are bit-identical.
  const pc1 = plain.graph.nodes.find((n) => n.name === 'c1')!;
  plain.graph.initializers.set('b1f', m.graph.initializers.get('b1')!);
  pc1.inputs[2] = 'b1f';
  const [a, b] = [await runModel(plain), await runModel(model)];
  assert.deepEqual(Array.from(b), Array.from(a), 'the same outputs as the float-bias file onnxruntime quantizes at load');
});

test('--bias int32 leaves a Gemm\'s bias float (a [1, N] bias cannot take a per-channel DQ) and is refused for TensorRT', async () => {
  const r = rand(11);
  const init = new Map([
    ['w1', floatTensor([4, 3, 3, 3], Array.from({ length: 108 }, () => r()))], ['b1', floatTensor([4], [0.1, -0.2, 0.3, 0])],
    ['g1w', floatTensor([4, 6], Array.from({ length: 24 }, () => r()))], ['g1b', floatTensor([1, 6], [0.1, 0.2, -0.1, 0, 0.3, -0.3])],
    ['g2w', floatTensor([6, 2], Array.from({ length: 12 }, () => r()))], ['g2b', floatTensor([2], [0.05, -0.05])],
  ]);
  const m = graphModel('gemm', init, [
    ...conv1Relu(),
    { opType: 'GlobalAveragePool', name: 'gap', inputs: ['r1o'], outputs: ['p'], attributes: [] },
    { opType: 'Flatten', name: 'flat', inputs: ['p'], outputs: ['f'], attributes: [] },
    { opType: 'Gemm', name: 'g1', inputs: ['f', 'g1w', 'g1b'], outputs: ['g1o'], attributes: [] },
    { opType: 'Relu', name: 'gr', inputs: ['g1o'], outputs: ['gro'], attributes: [] },
    { opType: 'Gemm', name: 'g2', inputs: ['gro', 'g2w', 'g2b'], outputs: ['g2o'], attributes: [] },
    { opType: 'Sigmoid', name: 'head', inputs: ['g2o'], outputs: ['y'], attributes: [] },
  ]);
  m.graph.outputs = [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 2] }];
  const plan = planQuantization(m, { target: 'cpu', bias: 'int32' });
  const { model, stats } = insertQdq(plan, await minmaxRanges(m, plan.activations));
  const g = model.graph;
  const g1 = g.nodes.find((n) => n.name === 'g1')!;
  assert.ok(plan.activations.includes('gro') || plan.foldedTensors.some((f) => f.tensor === 'g1o'), 'g1 writes int8 (its ReLU folded into the Q)');
  assert.ok(stats.int32Biases >= 2, JSON.stringify(stats));
  assert.ok(g.initializers.get(g1.inputs[2])?.dataType === DataType.FLOAT || g.nodes.find((n) => n.outputs[0] === g1.inputs[2])?.opType === 'Cast', 'g1 reads its bias as float');
  const c1 = g.nodes.find((n) => n.name === 'c1')!;
  assert.equal(g.initializers.get(g.nodes.find((n) => n.outputs[0] === c1.inputs[2])!.inputs[0])?.dataType, DataType.INT32, 'the Conv still reads an int32 bias');
  const s = await ort.InferenceSession.create(encodeModel(model));
  const out = await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
  await s.release();
  assert.equal((out.y.data as Float32Array).length, 2);
  assert.throws(() => planQuantization(m, { target: 'tensorrt', bias: 'int32' }), /bias 'int32' applies to target cpu/);
});

test('weights on CPU: a grid no uint8 input saturates without VNNI (Conv pairs of K positions held to 128 steps; 7-bit for odd channel counts and MatMul), ±127 for depthwise Convs, TensorRT and --weight-range full', () => {
  const grouped = weightGridFor('Conv', [4, 2, 3, 3], 2, 'reduced');
  assert.equal(grouped.qmax, 127, 'a grouped Conv that is not depthwise is a GEMM per group, paired');
  assert.equal(grouped.row, 18);
  // ONNX order c · 9 + t; the GEMM reads (t, c) with c innermost: channels 0 and 1 of one tap share a step.
  assert.deepEqual(Array.from(grouped.pairs!), Array.from({ length: 9 }, (_, t) => [t, 9 + t]).flat());
  assert.deepEqual(weightGridFor('Conv', [4, 3, 3, 3], 1, 'reduced'), { qmax: 63 }, 'an odd channel count (a stem reading RGB): 7-bit');
  assert.deepEqual(weightGridFor('Conv', [4, 1, 3, 3], 4, 'reduced'), { qmax: 127 }, 'depthwise');
  assert.deepEqual(weightGridFor('MatMul', [16, 8], 1, 'reduced'), { qmax: 63 });
  assert.deepEqual(weightGridFor('Conv', [4, 4, 1, 1], 1, 'full'), { qmax: 127 });
  assert.deepEqual(weightGridFor('Conv', [4, 4, 1, 1], 1, 'full', true), { qmax: 127, half: true }, 'an ONNX CPU build: binary16 scales');
  // A pair past the limit gives a step back on the value rounded up more; opposite signs are left alone.
  const held = Int8Array.of(65, 64, -65, -64, 100, -100, 64, 65);
  holdPairs(held, [64.6, 63.9, -64.6, -63.9, 100, -100, 63.9, 64.6], 1, { qmax: 127, pairs: Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7), row: 8 }, 0, 8);
  assert.deepEqual(Array.from(held), [64, 64, -64, -64, 100, -100, 64, 64]);
  // A pair of large same-sign weights sets the scale: 0.9 + 0.7 = 1.6 at 128 steps (on a half grid, the next binary16 value up).
  const q = quantizePerChannel(Float32Array.of(0.9, 0.7, -0.2, 0.1), 1, undefined, weightGridFor('Conv', [1, 4, 1, 1], 1, 'reduced'));
  assert.ok(Math.abs(q.scales[0] - 1.6 / 128) < 1e-9);
  const qh = quantizePerChannel(Float32Array.of(0.9, 0.7, -0.2, 0.1), 1, undefined, weightGridFor('Conv', [1, 4, 1, 1], 1, 'reduced', true));
  assert.equal(qh.scales[0], halfUp(1.6 / 128));
  assert.ok(qh.scales[0] >= 1.6 / 128 && qh.scales[0] < (1.6 / 128) * (1 + 2 ** -10));
  assert.deepEqual(Array.from(qh.data), [72, 56, -16, 8]);
  assert.deepEqual(Array.from(q.data), [72, 56, -16, 8]);
  const tie = quantizePerChannel(Float32Array.of(0.5, 0.5, 0.1, 0), 1, undefined, weightGridFor('Conv', [1, 4, 1, 1], 1, 'reduced'));
  assert.equal(tie.data[0] + tie.data[1], 128);
  const ranges = new Map([['x', { min: -2, max: 2 }], ['c1o', { min: -5, max: 30 }], ['r1o', { min: 0, max: 30 }], ['c2o', { min: -20, max: 20 }]]);
  const peaks = (opts: QuantPlanOptions) => {
    const { model } = insertQdq(planQuantization(tinyModel(), opts), ranges);
    const w8 = [...model.graph.initializers.values()].filter((t) => t.dataType === DataType.INT8 && t.dims.length >= 2);
    assert.equal(w8.length, 2);
    return w8.map((t) => Math.max(...Array.from(new Int8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), Math.abs)));
  };
  // 255·128 = 32640 fits the int16 that VPMADDUBSW sums two products into; 2·255·127 does not. c1
  // reads 3 channels (7-bit), c2 4 (paired).
  const [c1, c2] = peaks({ target: 'cpu' });
  assert.equal(c1, 63);
  assert.ok(c2 > 63 && c2 <= 127, `c2 peaks at ${c2}`);
  assert.deepEqual(peaks({ target: 'cpu', weightRange: 'full' }), [127, 127]);
  assert.deepEqual(peaks({ target: 'tensorrt' }), [127, 127]);
  assert.deepEqual(peaks({ target: 'tensorrt', weightRange: 'reduced' }), [127, 127], 'TensorRT builds keep full range');
});

/**
 * x [1,C,6,6] in [0.85, 1] (uint8 217–255) → Conv C→8 3×3 → ReLU → Conv 8→2 1×1 → y. The first Conv's
 * weight for input channel c at tap t has the sign `sign(c, t)`, positives twice the negatives, so
 * that the sum over a tap is large and positive.
 */
function pairModel(channels: number, sign: (c: number, t: number) => number): { model: OnnxModel; input: Float32Array } {
  const r = rand(3);
  const w1 = Array.from({ length: 8 * channels * 9 }, (_, i) => {
    const c = Math.floor(i / 9) % channels, t = i % 9;
    return (sign(c, t) > 0 ? 1 : -0.5) * (1 + 0.1 * r());
  });
  const w2 = Array.from({ length: 2 * 8 }, () => 0.2 + r() * 0.1);
  const init = new Map([
    ['w1', floatTensor([8, channels, 3, 3], w1)], ['b1', floatTensor([8], new Array(8).fill(0))],
    ['w2', floatTensor([2, 8, 1, 1], w2)], ['b2', floatTensor([2], [0, 0])],
  ]);
  const model = graphModel('pairs', init, [
    { opType: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['c1o'], attributes: [{ name: 'pads', type: 'ints', value: [1, 1, 1, 1] }] },
    { opType: 'Relu', name: 'r1', inputs: ['c1o'], outputs: ['r1o'], attributes: [] },
    { opType: 'Conv', name: 'c2', inputs: ['r1o', 'w2', 'b2'], outputs: ['y'], attributes: [] },
  ]);
  model.graph.inputs[0].shape = [1, channels, 6, 6];
  model.graph.outputs[0].shape = [1, 2, 6, 6];
  const input = Float32Array.from({ length: channels * 36 }, () => 0.925 + 0.15 * r());
  for (let i = 0; i < input.length; i += 3) input[i] = 1;
  return { model, input };
}

async function relativeError(float: OnnxModel, int8: OnnxModel, input: Float32Array, dims: number[]): Promise<number> {
  const run = async (m: OnnxModel) => {
    const s = await ort.InferenceSession.create(encodeModel(m));
    const out = await s.run({ x: new ort.Tensor('float32', input, dims) });
    await s.release();
    return out.y.data as Float32Array;
  };
  const [a, b] = [await run(float), await run(int8)];
  let err = 0, peak = 0;
  for (let i = 0; i < a.length; i++) { err = Math.max(err, Math.abs(a[i] - b[i])); peak = Math.max(peak, Math.abs(a[i])); }
  return err / peak;
}

test('paired weights do not saturate onnxruntime\'s int8 Convs on this CPU, where full-range ones do if it has no VNNI', async () => {
  const build = async (channels: number, sign: (c: number, t: number) => number, weightRange: 'reduced' | 'full') => {
    const { model, input } = pairModel(channels, sign);
    const dims = [1, channels, 6, 6];
    const plan = planQuantization(model, { target: 'cpu', weightRange });
    const cal = await calibrate({ model, inputName: 'x', tensors: plan.activations, frames: (async function* () { yield { data: input, dims, dtype: 'float32' as const, transform: { srcWidth: 6, srcHeight: 6, dstWidth: 6, dstHeight: 6, contentWidth: 6, contentHeight: 6, padX: 0, padY: 0, scaleX: 1, scaleY: 1 } }; })() });
    const ranges = new Map([...cal.histograms].map(([k, h]) => [k, rangeFromHistogram(h, { method: 'minmax' })]));
    ranges.set('x', { min: 0, max: 1 }); // uint8 = 255 · x: up to 255 where x is 1
    const q = insertQdq(plan, ranges);
    assert.ok(q.model.graph.nodes.some((n) => n.opType === 'Conv' && n.name === 'c1'), 'c1 stays a Conv (QLinearConv in onnxruntime)');
    return relativeError(model, q.model, input, dims);
  };
  const bySign = (signs: number[]) => (c: number) => signs[c];
  // Opposite signs within the pairs the GEMM adds (channels 0+1, 2+3, ...): the pair limit never binds,
  // so the weights use all of ±127. Had onnxruntime paired channels 1+2 or two taps of one channel,
  // same-sign pairs near 2·255·127 would saturate on an AVX2 CPU.
  const alternating = bySign([1, -1, -1, 1, 1, -1, -1, 1]);
  // Same signs within each pair: the limit binds, the pair sums reach 128 steps.
  const paired = bySign([1, 1, -1, -1, 1, 1, -1, -1]);
  // The same, with the signs flipping from tap to tap: a grid that bounded two taps of one channel
  // instead would not bind here, and the channel pairs would saturate.
  const pairedTaps = (c: number, t: number) => paired(c) * (t % 2 === 0 ? 1 : -1);
  // A 3-channel stem (7-bit grid): signs alternating along K = (t, c), and all alike.
  const stem = (c: number, t: number) => ((t * 3 + c) % 2 === 0 ? 1 : -1);
  const errs = {
    alternating: await build(8, alternating, 'reduced'), paired: await build(8, paired, 'reduced'), pairedTaps: await build(8, pairedTaps, 'reduced'), stem: await build(3, stem, 'reduced'),
    stemSame: await build(3, () => 1, 'reduced'), full: await build(8, paired, 'full'),
  };
  assert.ok(errs.alternating < 0.03, `alternating signs, paired grid: relative error ${errs.alternating}`);
  assert.ok(errs.paired < 0.03 && errs.pairedTaps < 0.03, `same-sign pairs, paired grid: relative error ${errs.paired}, ${errs.pairedTaps} with signs flipping by tap`);
  assert.ok(errs.stem < 0.03 && errs.stemSame < 0.03, `3-channel stem, 7-bit grid: relative error ${errs.stem} (alternating), ${errs.stemSame} (all positive)`);
  const flags = int8CpuFlags();
  const saturates = saturatesFullRangeInt8({ arch: process.arch, flags: flags.length ? flags : undefined });
  // The control: the same weights at full range saturate without VNNI, so this model can tell.
  if (saturates) assert.ok(errs.full > 0.2, `full range on a CPU without VNNI saturates: relative error ${errs.full}`);
  else assert.ok(errs.full < 0.03, `full range with VNNI or on ARM: relative error ${errs.full}`);
  console.log(`relative error: ${JSON.stringify(errs)} (${saturates ? 'this CPU saturates full-range int8' : 'this CPU does not saturate'})`);
});

test('QDQ for TensorRT is symmetric and keeps the ReLU', () => {
  const plan = planQuantization(tinyModel(), { target: 'tensorrt' });
  assert.equal(plan.foldedActivations, 0);
  const { model, params } = insertQdq(plan, new Map([['x', { min: -2, max: 1 }], ['c1o', { min: -5, max: 30 }], ['r1o', { min: 0, max: 30 }], ['c2o', { min: -20, max: 20 }]]));
  for (const p of params.values()) assert.equal(p.zeroPoint, 0);
  assert.equal(model.graph.nodes.filter((n) => n.opType === 'Relu').length, 1);
  // TensorRT's ONNX parser takes Q/DQ scales as initializers: float32 there, no Cast of halves; biases
  // stay float32 (as NVIDIA's own QDQ exports leave them), no int32 tensor.
  const g = model.graph;
  assert.ok(!g.nodes.some((n) => n.opType === 'Cast') && ![...g.initializers.values()].some((t) => t.dataType === DataType.FLOAT16 || t.dataType === DataType.INT32));
  assert.equal(g.initializers.get(g.nodes.find((n) => n.name === 'c1')!.inputs[2])?.dataType, DataType.FLOAT);
  const wdq = g.nodes.filter((n) => n.opType === 'DequantizeLinear' && g.initializers.get(n.inputs[0])?.dataType === DataType.INT8);
  assert.ok(wdq.length > 0 && wdq.every((n) => g.initializers.get(n.inputs[1])?.dataType === DataType.FLOAT));
});

test('a CPU build stores weight scales as halves, and a bias as halves only where that moves it by at most 1/32 of an output step', () => {
  const m = tinyModel();
  // c1's biases against r1o's step (30/255 ≈ 0.118): 1000.3 moves by 0.2 as a half (1000.5), 1.7 steps.
  const build = (b1: number[]) => {
    m.graph.initializers.set('b1', floatTensor([4], b1));
    const { model } = insertQdq(planQuantization(structuredClone(m), { target: 'cpu' }), new Map([['x', { min: -2, max: 2 }], ['c1o', { min: 0, max: 30 }], ['r1o', { min: 0, max: 30 }], ['c2o', { min: -20, max: 20 }]]));
    return model.graph;
  };
  const small = build([0.1, -0.2, 0.3, 0]);
  const c1 = small.nodes.find((n) => n.name === 'c1')!;
  assert.equal(small.initializers.get(small.nodes.find((n) => n.outputs[0] === c1.inputs[2])!.inputs[0])?.dataType, DataType.FLOAT16);
  const wdq = small.nodes.find((n) => n.outputs[0] === c1.inputs[1])!;
  const scales = constFloats(small, wdq.inputs[1]);
  assert.equal(small.initializers.get(small.nodes.find((n) => n.outputs[0] === wdq.inputs[1])!.inputs[0])?.dataType, DataType.FLOAT16, 'weight scales: halves through a Cast');
  assert.ok(scales.every((v) => toHalf(v) === v));
  const large = build([0.1, -0.2, 1000.3, 0]);
  const c1l = large.nodes.find((n) => n.name === 'c1')!;
  assert.equal(large.initializers.get(c1l.inputs[2])?.dataType, DataType.FLOAT, 'that bias stays float32');
  assert.deepEqual(Array.from(constFloats(large, c1l.inputs[2])), Array.from(Float32Array.of(0.1, -0.2, 1000.3, 0)));
});

test('a per-tensor weight scale still holds every channel\'s bias within int32 (the floor onnxruntime\'s bias quantization needs)', () => {
  const m = tinyModel();
  // Weights ~1e-6 and a bias of 1.5 on an input step of 4/255: b / (sIn · sW) would pass 2^31.
  m.graph.initializers.set('w1', floatTensor([4, 3, 3, 3], Array.from({ length: 108 }, (_, i) => ((i % 7) - 3) * 1e-6)));
  m.graph.initializers.set('b1', floatTensor([4], [0.1, 1.5, -0.2, 0]));
  const sIn = 4 / 255;
  const { model } = insertQdq(planQuantization(m, { target: 'cpu', perChannel: false }), new Map([['x', { min: -2, max: 2 }], ['c1o', { min: 0, max: 30 }], ['r1o', { min: 0, max: 30 }], ['c2o', { min: -20, max: 20 }]]));
  const g = model.graph;
  const c1 = g.nodes.find((n) => n.name === 'c1')!;
  const sW = constFloats(g, g.nodes.find((n) => n.outputs[0] === c1.inputs[1])!.inputs[1]);
  assert.equal(sW.length, 1, 'one scale for the tensor');
  for (const b of [0.1, 1.5, -0.2]) assert.ok(Math.abs(b) / (sIn * sW[0]) <= 2 ** 30 * (1 + 1e-6), `bias ${b}: ${Math.abs(b) / (sIn * sW[0])} steps`);
});

function withScalarMul(c: number): OnnxModel {
  const m = tinyModel();
  const g = m.graph;
  g.initializers.set('k', floatTensor([], [c]));
  const c2 = g.nodes.findIndex((n) => n.name === 'c2');
  g.nodes.splice(c2, 0, { opType: 'Mul', name: 'scale', inputs: ['r1o', 'k'], outputs: ['m1'], attributes: [] });
  g.nodes[c2 + 1].inputs[0] = 'm1';
  return m;
}

test('QDQ drops a Mul by a positive scalar: its output reuses the input integers with the scale times c', async () => {
  const plan = planQuantization(withScalarMul(0.25), { target: 'cpu' });
  assert.ok(plan.activations.includes('m1'));
  const cal = await calibrate({ model: withScalarMul(0.25), inputName: 'x', tensors: plan.activations, frames: frames() });
  const ranges = new Map([...cal.histograms].map(([k, h]) => [k, rangeFromHistogram(h, { method: 'minmax' })]));
  const { model, params } = insertQdq(plan, ranges);
  const g = model.graph;
  assert.equal(g.nodes.filter((n) => n.opType === 'Mul').length, 0, 'the Mul is gone');
  const [pr, pm] = [params.get('r1o')!, params.get('m1')!];
  assert.equal(pm.zeroPoint, pr.zeroPoint);
  assert.ok(Math.abs(pm.scale - pr.scale * 0.25) < 1e-12 * pr.scale);
  const qOf = (t: string) => g.nodes.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === t);
  assert.equal(qOf('m1'), undefined, 'no second rounding');
  // c2 (1×1, into the float head) runs as Transpose(integers) → DQ → MatMul.
  assert.equal(g.nodes.find((n) => n.name === 'c2~mm/nhwc')?.inputs[0], qOf('r1o')!.outputs[0], 'c2 reads the integers of r1o');
  const [a, b] = [await runModel(withScalarMul(0.25)), await runModel(model)];
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  assert.ok(err < 0.05, `max |float − int8| ${err}`);
  // A negative factor would flip the grid: that Mul stays and rounds on its own range.
  const m1 = ranges.get('m1')!;
  const neg = insertQdq(planQuantization(withScalarMul(-0.25), { target: 'cpu' }), new Map([...ranges, ['m1', { min: -m1.max, max: -m1.min }]]));
  assert.equal(neg.model.graph.nodes.filter((n) => n.opType === 'Mul').length, 1);
});

/** x → c1 → ReLU → r; c2(r) + r, or Concat(c2(r), r) (→ ReLU) → c3 → Sigmoid: r is quantized for the join whatever c2 does. */
function residualModel(join: 'Add' | 'Concat' = 'Add', reluAfterJoin = false): OnnxModel {
  const r = rand(11);
  const joined = join === 'Add' ? 4 : 8;
  const init = new Map([
    ['w1', floatTensor([4, 3, 3, 3], Array.from({ length: 108 }, () => r()))], ['b1', floatTensor([4], [0.1, -0.1, 0.2, 0])],
    ['w2', floatTensor([4, 4, 1, 1], Array.from({ length: 16 }, () => r()))], ['b2', floatTensor([4], [0, 0.1, 0, -0.1])],
    ['w3', floatTensor([2, joined, 1, 1], Array.from({ length: 2 * joined }, () => r()))], ['b3', floatTensor([2], [0.05, -0.05])],
  ]);
  return graphModel('residual', init, [
    ...conv1Relu(),
    { opType: 'Conv', name: 'c2', inputs: ['r1o', 'w2', 'b2'], outputs: ['c2o'], attributes: [] },
    { opType: join, name: 'join', inputs: ['c2o', 'r1o'], outputs: ['joino'], attributes: join === 'Concat' ? [{ name: 'axis', type: 'int', value: 1 }] : [] },
    ...(reluAfterJoin ? [{ opType: 'Relu', name: 'joinrelu', inputs: ['joino'], outputs: ['joinr'], attributes: [] }] : []),
    { opType: 'Conv', name: 'c3', inputs: [reluAfterJoin ? 'joinr' : 'joino', 'w3', 'b3'], outputs: ['c3o'], attributes: [] },
    { opType: 'Sigmoid', name: 'head', inputs: ['c3o'], outputs: ['y'], attributes: [] },
  ]);
}

/** Min/max ranges of `tensors`, calibrated on the test frame. */
async function minmaxRanges(m: OnnxModel, tensors: string[]): Promise<Map<string, ReturnType<typeof rangeFromHistogram>>> {
  const cal = await calibrate({ model: m, inputName: 'x', tensors, frames: frames() });
  return new Map([...cal.histograms].map(([k, h]) => [k, rangeFromHistogram(h, { method: 'minmax' })]));
}

/** onnxruntime's own rewrite of the graph (optimizedModelFilePath): the nodes that actually run. */
async function optimizedNodes(model: OnnxModel, t: TestContext): Promise<OnnxNode[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-qdq-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const optimized = join(dir, 'opt.onnx');
  const s = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended', optimizedModelFilePath: optimized });
  await s.release();
  return decodeModel(new Uint8Array(readFileSync(optimized))).graph.nodes;
}

test('an excluded Conv stays float in onnxruntime even when its input is quantized for another reader', async (t) => {
  const m = residualModel();
  const plan = planQuantization(m, { target: 'cpu', exclude: ['c2'] });
  assert.ok(plan.activations.includes('r1o'), 'the residual Add needs r1o quantized');
  const { model } = insertQdq(plan, await minmaxRanges(m, plan.activations));
  const c2 = model.graph.nodes.find((n) => n.name === 'c2')!;
  assert.equal(c2.inputs[1], 'w2', 'c2 keeps its float weights');
  const ops = (await optimizedNodes(model, t)).map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'QLinearConv').length, 1, `c1 only runs in int8: ${ops.join(' ')}`);
  assert.equal(ops.filter((o) => o === 'Conv' || o === 'FusedConv').length, 1, `c2 (excluded) stays float: ${ops.join(' ')}`);
  assert.equal(ops.filter((o) => o === 'MatMulIntegerToFloat').length, 1, `c3 (1×1, before the float head) runs as an int8 MatMul with float output: ${ops.join(' ')}`);
});

test('a Conv reading an activation kept float stores on-grid weights as int8 (Cast × scale, which onnxruntime folds at load) and computes exactly what float weights compute; off-grid weights stay float', async (t) => {
  const m = tinyModel();
  // c2 reads r1o, kept float. Its weights put on the CPU grid as GPTQ leaves them (prepare.ts).
  const w2 = m.graph.initializers.get('w2')!;
  const grid = weightGridFor('Conv', w2.dims, 1, 'reduced', true);
  const qw = quantizePerChannel(constFloats(m.graph, 'w2'), 2, undefined, grid);
  const onGrid = Float32Array.from(qw.data, (q, k) => q * qw.scales[Math.floor(k / 4)]);
  m.graph.initializers.set('w2', floatTensor(w2.dims, onGrid));
  const build = async (floatConvWeights: 'float' | 'int8', model = m) => {
    const plan = planQuantization(model, { target: 'cpu', keepFloat: ['r1o'], floatConvWeights });
    return insertQdq(plan, await minmaxRanges(model, plan.activations));
  };
  const int8 = await build('int8'), float = await build('float');
  assert.equal(int8.stats.int8WeightFloatConvs, 1);
  assert.equal(float.stats.int8WeightFloatConvs, 0);
  const g = int8.model.graph;
  const c2 = g.nodes.find((n) => n.name === 'c2')!;
  const mul = g.nodes.find((n) => n.opType === 'Mul' && n.outputs[0] === c2.inputs[1])!;
  const cast = g.nodes.find((n) => n.opType === 'Cast' && n.outputs[0] === mul.inputs[0])!;
  const w8 = g.initializers.get(cast.inputs[0])!;
  assert.equal(w8.dataType, DataType.INT8);
  assert.deepEqual(new Int8Array(w8.data.slice().buffer), qw.data, 'the int8 weights are the grid\'s integers');
  assert.deepEqual(constFloats(g, mul.inputs[1]), qw.scales, 'one scale per output channel');
  assert.equal(float.model.graph.nodes.find((n) => n.name === 'c2')!.inputs[1], 'w2');
  assert.deepEqual(await runModel(int8.model), await runModel(float.model), 'the same output, bit for bit');
  // onnxruntime folds the Cast and Mul of constants at load: c2 runs as a float Conv on an initializer.
  const nodes = await optimizedNodes(int8.model, t);
  const c2run = nodes.find((n) => n.name === 'c2');
  assert.ok(c2run && !nodes.some((n) => n.outputs.includes(c2run.inputs[1])), `c2 reads a constant, no node computes its weights at run time: ${nodes.map((n) => n.opType).join(' ')}`);
  // Weights off the grid (no GPTQ) stay float: storing them int8 would round them.
  const offGrid = await build('int8', tinyModel());
  assert.equal(offGrid.stats.int8WeightFloatConvs, 0);
  assert.equal(offGrid.model.graph.nodes.find((n) => n.name === 'c2')!.inputs[1], 'w2');
  // Two such Convs sharing their weights: stored once.
  const shared = graphModel('shared', new Map(m.graph.initializers), [
    ...conv1Relu(),
    { opType: 'Conv', name: 'c2', inputs: ['r1o', 'w2', 'b2'], outputs: ['c2o'], attributes: [] },
    { opType: 'Conv', name: 'c2b', inputs: ['r1o', 'w2'], outputs: ['c2bo'], attributes: [] },
    { opType: 'Add', name: 'sum', inputs: ['c2o', 'c2bo'], outputs: ['s'], attributes: [] },
    { opType: 'Sigmoid', name: 'head', inputs: ['s'], outputs: ['y'], attributes: [] },
  ]);
  const both = await build('int8', shared);
  assert.equal(both.stats.int8WeightFloatConvs, 2);
  const [a, b] = ['c2', 'c2b'].map((name) => both.model.graph.nodes.find((n) => n.name === name)!.inputs[1]);
  assert.equal(a, b, 'both read one Cast × scale');
  assert.equal(both.model.graph.nodes.filter((n) => n.opType === 'Cast' && both.model.graph.initializers.get(n.inputs[0])?.dataType === DataType.INT8).length, 1);
});

test('the sensitivity search measures each activation alone, across probes of 32 gates: the output SNR with only that activation rounded', async () => {
  // A chain of 40 pointwise Conv → ReLU layers (gain about 1, positive), then a Conv to the output.
  const r = rand(11);
  const layers = 40;
  const w = (n: number) => Array.from({ length: n }, () => (r() + 0.5) * 0.5);
  const init = new Map<string, OnnxTensor>([['w0', floatTensor([4, 3, 1, 1], w(12))], ['wy', floatTensor([2, 4, 1, 1], w(8))]]);
  const nodes: OnnxNode[] = [];
  for (let k = 0; k < layers; k++) {
    if (k > 0) init.set(`w${k}`, floatTensor([4, 4, 1, 1], w(16)));
    nodes.push(
      { opType: 'Conv', name: `c${k}`, inputs: [k ? `h${k - 1}` : 'x', `w${k}`], outputs: [`a${k}`], attributes: [] },
      { opType: 'Relu', name: `r${k}`, inputs: [`a${k}`], outputs: [`h${k}`], attributes: [] },
    );
  }
  nodes.push({ opType: 'Conv', name: 'cy', inputs: [`h${layers - 1}`, 'wy'], outputs: ['y'], attributes: [] });
  const m = graphModel('chain', init, nodes);
  const plan = planQuantization(m, { target: 'cpu' });
  const ranges = await minmaxRanges(m, plan.activations);
  const frame = (await frames().next()).value!;
  const sens = await activationSensitivity({ model: m, inputName: 'x', ranges, plan: { target: 'cpu' }, frames: [frame] });
  assert.ok(sens.length > 32, `${sens.length} activations: more than one probe`);
  assert.deepEqual(sens.map((s) => s.tensor), plan.activations);
  const ref = await runModel(m);
  for (const k of [0, 1, 31, 32, sens.length - 1]) {
    // The same activation rounded by hand: Q → DQ after it, its readers moved to the DQ.
    const t = sens[k].tensor, p = activationParamsU8(ranges.get(t)!);
    const one: OnnxModel = { ...m, graph: { ...m.graph, initializers: new Map(m.graph.initializers), nodes: m.graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map((i) => (i === t ? 't~dq' : i)) })) } };
    one.graph.initializers.set('t~s', floatTensor([], [p.scale]));
    one.graph.initializers.set('t~z', { dims: [], dataType: DataType.UINT8, data: Uint8Array.of(p.zeroPoint) });
    one.graph.nodes.unshift(
      { opType: 'QuantizeLinear', name: 't~Q', inputs: [t, 't~s', 't~z'], outputs: ['t~q'], attributes: [] },
      { opType: 'DequantizeLinear', name: 't~DQ', inputs: ['t~q', 't~s', 't~z'], outputs: ['t~dq'], attributes: [] },
    );
    const acc = { sig: 0, err: 0 };
    addToSnr(acc, ref, await runModel(one));
    const direct = snrDb(acc);
    assert.ok(Number.isFinite(direct) && Math.abs(direct - sens[k].snrDb) < 0.05, `${t}: search ${sens[k].snrDb} dB, by hand ${direct} dB`);
  }
});

for (const op of ['Add', 'Concat'] as const) {
  test(`a ReLU after ${op === 'Add' ? 'a residual Add' : 'a Concat'} folds into its Q: onnxruntime runs QLinear${op} into the next Conv with no requantization between`, async (t) => {
    const m = residualModel(op, true);
    const [a, noRelu] = [await runModel(m), await runModel(residualModel(op, false))];
    let reluMatters = 0;
    for (let i = 0; i < a.length; i++) reluMatters = Math.max(reluMatters, Math.abs(a[i] - noRelu[i]));
    assert.ok(reluMatters > 0.05, `the joined tensor has negative values for the ReLU to clamp (max effect ${reluMatters})`);
    const plan = planQuantization(m, { target: 'cpu' });
    assert.equal(plan.foldedActivations, 2, `c1's ReLU and the ${op}'s`);
    assert.ok(plan.activations.includes('joinr') && !plan.activations.includes('joino'), `one Q, on the ReLU's output: ${plan.activations.join(' ')}`);
    const ranges = await minmaxRanges(m, plan.activations);
    assert.equal(ranges.get('joinr')!.min, 0);
    const { model } = insertQdq(plan, ranges);
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Relu').length, 0);
    const nodes = await optimizedNodes(model, t);
    const ops = nodes.map((n) => n.opType);
    const joined = nodes.find((n) => n.opType === `QLinear${op}`);
    assert.ok(joined, `the ${op} runs in int8: ${ops.join(' ')}`);
    assert.ok(nodes.filter((n) => n.inputs.includes(joined.outputs[0])).every((n) => n.opType !== 'DequantizeLinear'), `c3 reads the QLinear${op}'s integers (through an int8 layout Transpose): ${ops.join(' ')}`);
    assert.equal(ops.filter((o) => o === 'QuantizeLinear').length, 1, `only the graph input is quantized at run time: ${ops.join(' ')}`);
    const b = await runModel(model);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
    assert.ok(err < 0.05, `max |float − int8| ${err} (without the ReLU the output would move by ${reluMatters})`);
  });
}

test('a ReLU stays when its output leaves the graph, or when its producer is not in foldInto; a kept fold names the tensor it replaced', async () => {
  const plan = planQuantization(residualModel('Add', true), { target: 'cpu' });
  assert.deepEqual(plan.foldedTensors, [{ tensor: 'c1o', producer: 'Conv' }, { tensor: 'joino', producer: 'Add' }], 'what a TensorRT table from a CPU calibration still needs');
  const m = residualModel('Add', true);
  m.graph.outputs.push({ name: 'joinr', elemType: DataType.FLOAT, shape: [1, 4, 8, 8] });
  const kept = planQuantization(m, { target: 'cpu' });
  assert.equal(kept.foldedActivations, 1, 'c1 only');
  assert.ok(kept.activations.includes('joino'), `the sum is quantized before the ReLU: ${kept.activations.join(' ')}`);
  const { model } = insertQdq(kept, await minmaxRanges(m, kept.activations));
  assert.deepEqual(model.graph.nodes.filter((n) => n.opType === 'Relu').map((n) => n.outputs[0]), ['joinr'], 'the graph output keeps its ReLU');
  const s = await ort.InferenceSession.create(encodeModel(model));
  const out = await s.run({ x: new ort.Tensor('float32', input, [1, 3, 8, 8]) });
  await s.release();
  assert.ok((out.joinr.data as Float32Array).every((v) => v >= 0), 'no negative value leaves through joinr');
  const tflitePlan = planQuantization(residualModel('Concat', true), { target: 'cpu', foldInto: ['Conv', 'Add'] });
  assert.equal(tflitePlan.foldedActivations, 1, 'the Concat\'s ReLU stays, as the INT8 TFLite export keeps it');
  assert.ok(tflitePlan.activations.includes('joino'));
});
