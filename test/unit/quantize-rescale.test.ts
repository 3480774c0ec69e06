/**
 * Rescaling across hard-swish and along a residual stream, and GPTQ weight rounding, on a small
 * MobileNetV3-shaped graph (the layout the TF.js import produces: NHWC elementwise ops between
 * Transposes around NCHW Convs):
 *
 *   x → Conv c1 (4 ch, channels 1–3 tiny) → T → hard-swish (Add 3, Clip, Mul 1/6, Mul) → T →
 *   depthwise 3×3 → Relu → Conv proj → T → Add (skip from the hard-swish) → T → Conv 1×1 → Sigmoid
 *
 * Rescaling must leave the float output unchanged and balance c1's channels; GPTQ must leave every
 * weight on its int8 grid with the same per-channel scale, and round with less output error on the
 * data than round-to-nearest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, tensorToFloat32, type OnnxModel, type OnnxNode } from '../../fleet-server/src/convert/onnx/model.js';
import { findRescaleSeeds, findResidualAdds, planResiduals, rescale, rescaleResiduals } from '../../fleet-server/src/quantize/rescale.js';
import { applyGptq, collectConvMoments, inverseCholeskyUpper } from '../../fleet-server/src/quantize/gptq.js';
import { calibrate } from '../../fleet-server/src/quantize/calibrate.js';
import { constFloats } from '../helpers/onnx-consts.js';
import { biasScaleFloor, INT8_PAIR_MAX, pairPeak, quantizeBias, quantizePerChannel, weightGridFor } from '../../fleet-server/src/quantize/qmath.js';
import { insertQdq, planQuantization } from '../../fleet-server/src/quantize/qdq.js';
import type { ModelInput } from '../../agent/src/preprocess/preprocess.js';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}

const node = (opType: string, name: string, inputs: string[], outputs: string[], attributes: OnnxNode['attributes'] = []): OnnxNode => ({ opType, name, inputs, outputs, attributes });
const toNhwc = { name: 'perm', type: 'ints' as const, value: [0, 2, 3, 1] };
const toNchw = { name: 'perm', type: 'ints' as const, value: [0, 3, 1, 2] };
const same = { name: 'auto_pad', type: 'string' as const, value: 'SAME_UPPER' };

function hardSwishModel(): OnnxModel {
  const r = rand(11);
  // Channel 0 of c1 spans ±40, channels 1–3 a few hundredths: one per-tensor int8 step wipes them.
  const w1 = Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => r() * (i < 27 ? 8 : 0.01));
  const init = new Map([
    ['w1', floatTensor([4, 3, 3, 3], w1)], ['b1', floatTensor([4], [0.5, 0.01, -0.01, 0.02])],
    ['three', floatTensor([], [3])], ['zero', floatTensor([], [0])], ['six', floatTensor([], [6])], ['sixth', floatTensor([], [1 / 6])],
    ['wdw', floatTensor([4, 1, 3, 3], Array.from({ length: 36 }, (_, i) => r() * (i < 9 ? 1 : 60)))], ['bdw', floatTensor([4], [0.1, 0.2, 0.1, 0])],
    ['wp', floatTensor([4, 4, 1, 1], Array.from({ length: 16 }, () => r()))], ['bp', floatTensor([4], [0, 0.1, 0, -0.1])],
    ['w3', floatTensor([2, 4, 1, 1], Array.from({ length: 8 }, () => r()))], ['b3', floatTensor([2], [0.05, -0.05])],
  ]);
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name: 'hswish', initializers: init, valueInfo: [],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 3, 8, 8] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1, 2, 8, 8] }],
      nodes: [
        node('Conv', 'c1', ['x', 'w1', 'b1'], ['c1o'], [same]),
        node('Transpose', 't1', ['c1o'], ['x1'], [toNhwc]),
        node('Add', 'hs/add', ['x1', 'three'], ['hs_a']),
        node('Clip', 'hs/relu6', ['hs_a', 'zero', 'six'], ['hs_r']),
        node('Mul', 'hs/mul', ['sixth', 'x1'], ['hs_m']),
        node('Mul', 'hs/mul_1', ['hs_m', 'hs_r'], ['h']),
        node('Transpose', 't2', ['h'], ['h_nchw'], [toNchw]),
        node('Conv', 'dw', ['h_nchw', 'wdw', 'bdw'], ['dwo'], [same, { name: 'group', type: 'int', value: 4 }]),
        node('Relu', 'dwr', ['dwo'], ['dwr']),
        node('Conv', 'proj', ['dwr', 'wp', 'bp'], ['po']),
        node('Transpose', 't3', ['po'], ['p'], [toNhwc]),
        node('Add', 'skip', ['p', 'h'], ['s']),
        node('Transpose', 't4', ['s'], ['s_nchw'], [toNchw]),
        node('Conv', 'c3', ['s_nchw', 'w3', 'b3'], ['c3o']),
        node('Sigmoid', 'head', ['c3o'], ['y']),
      ],
    },
  };
}

const inputs = [0, 1, 2].map((k) => Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i * 0.37 + k) * 2 + Math.cos(i * 0.11 * (k + 1))));
async function* frames(): AsyncGenerator<ModelInput> {
  for (const data of inputs) yield { data, dims: [1, 3, 8, 8], dtype: 'float32', transform: { scale: 1, padX: 0, padY: 0, srcWidth: 8, srcHeight: 8, dstWidth: 8, dstHeight: 8 } as unknown as ModelInput['transform'] };
}

async function outputs(m: OnnxModel, names = ['y']): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(encodeModel({ ...m, graph: { ...m.graph, outputs: [...m.graph.outputs, ...names.filter((n) => n !== 'y').map((name) => ({ name, elemType: DataType.FLOAT }))] } }));
  const out: Float32Array[] = [];
  for (const data of inputs) {
    const r = await s.run({ x: new ort.Tensor('float32', data, [1, 3, 8, 8]) });
    for (const n of names) out.push(r[n].data as Float32Array);
  }
  await s.release();
  return out;
}

async function channelMax(m: OnnxModel, tensors: string[], axes?: Map<string, number>): Promise<Map<string, Float64Array>> {
  return (await calibrate({ model: m, inputName: 'x', tensors, channelMaxFor: tensors, channelAxis: axes, histograms: false, frames: frames() })).channelMax;
}

test('rescaling across hard-swish and the residual stream leaves the float output unchanged and balances the channels', async () => {
  const m = hardSwishModel();
  const seeds = findRescaleSeeds(m);
  assert.deepEqual(seeds.map((s) => s.name), ['c1'], 'the Conv feeding hard-swish is the seed');
  const before = await channelMax(m, ['c1o']);
  const spread = (v: Float64Array) => Math.max(...v) / Math.min(...v);
  assert.ok(spread(before.get('c1o')!) > 100, `c1's channels differ by ${spread(before.get('c1o')!).toFixed(0)}×`);
  const rs = rescale(m, seeds, before);
  assert.equal(rs.regions.length, 1);
  const region = rs.regions[0];
  assert.deepEqual(region.absorbers.map((a) => [a.node.name, a.depthwise]), [['dw', true]], 'the depthwise Conv absorbs the factor; the skip Add gets the unscaled tensor');
  // The gate is one depthwise 1×1 Conv + Clip on the NCHW tensor; hard-swish's Add of 3 is gone.
  const g = rs.model.graph;
  assert.ok(!g.nodes.some((n) => n.name === 'hs/add'), 'Add(x, 3) replaced');
  const gate = g.nodes.find((n) => n.opType === 'Conv' && n.name.includes('~gate'));
  assert.ok(gate && gate.inputs[0] === 'c1o', 'gate Conv reads the scaled NCHW Conv output');
  const after = await channelMax(rs.model, ['c1o']);
  assert.ok(spread(after.get('c1o')!) < 1.01, `rescaled channels within 1% (spread ${spread(after.get('c1o')!).toFixed(4)})`);

  const residuals = planResiduals(rs.model, findResidualAdds(rs.model));
  assert.equal(residuals.length, 1, 'one residual stream');
  assert.deepEqual(residuals[0].producers.map((p) => [p.node.name, p.kind]).sort(), [['h/~unscaled/Mul', 'mul'], ['proj', 'conv']], 'the projection Conv and the skip side\'s 1/k Mul scale together');
  const sums = await channelMax(rs.model, ['s'], new Map([['s', 3]]));
  const rr = rescaleResiduals(rs.model, residuals, sums);
  assert.equal(rr.regions, 1);

  const [y0, y1, y2] = [await outputs(m), await outputs(rs.model), await outputs(rr.model)];
  for (const [k, y] of [y1, y2].entries()) {
    y0.forEach((a, f) => a.forEach((v, i) => assert.ok(Math.abs(v - y[f][i]) < 1e-5, `step ${k + 1}, frame ${f}, output ${i}: ${v} vs ${y[f][i]}`)));
  }
});

test('GPTQ leaves weights on their per-channel int8 grid (same scale) and rounds with less error on the data than round-to-nearest', async () => {
  const m = hardSwishModel();
  const moments = await collectConvMoments({ model: m, inputName: 'x', frames: frames() });
  assert.deepEqual(moments.map((x) => x.node.name), ['c1', 'dw', 'proj', 'c3']);
  assert.deepEqual(moments.map((x) => x.H.length), [1, 4, 1, 1], 'one moment matrix per group: 4 for the depthwise Conv');
  const gq = applyGptq(m, moments);
  assert.equal(gq.report.convs, 4);
  for (const name of ['w1', 'wdw', 'wp', 'w3']) {
    const orig = tensorToFloat32(m.graph.initializers.get(name)!);
    const got = tensorToFloat32(gq.model.graph.initializers.get(name)!);
    const dims = m.graph.initializers.get(name)!.dims;
    // The full-range grid GPTQ rounds onto (binary16 scales, as the build stores them).
    const grid = weightGridFor('Conv', dims, name === 'wdw' ? dims[0] : 1, 'full');
    const q = quantizePerChannel(got, dims[0], undefined, grid);
    const ref = quantizePerChannel(orig, dims[0], undefined, grid);
    for (let c = 0; c < dims[0]; c++) assert.ok(Math.abs(q.scales[c] - ref.scales[c]) <= 1e-6 * ref.scales[c], `${name}[${c}]: scale kept (${q.scales[c]} vs ${ref.scales[c]})`);
    got.forEach((v, i) => {
      const s = q.scales[Math.floor(i / (got.length / dims[0]))];
      assert.ok(Math.abs(v / s - Math.round(v / s)) < 1e-3, `${name}[${i}] = ${v} is on the grid`);
    });
  }
  // Round-to-nearest of the same weights, for comparison.
  const rtn = structuredClone(m);
  rtn.graph.initializers = new Map(m.graph.initializers);
  for (const name of ['w1', 'wdw', 'wp', 'w3']) {
    const t = m.graph.initializers.get(name)!;
    const q = quantizePerChannel(tensorToFloat32(t), t.dims[0]);
    const per = q.data.length / t.dims[0];
    rtn.graph.initializers.set(name, floatTensor(t.dims, Array.from(q.data, (v, i) => v * q.scales[Math.floor(i / per)])));
  }
  const err = (a: Float32Array[], b: Float32Array[]) => a.reduce((s, x, f) => s + x.reduce((t, v, i) => t + (v - b[f][i]) ** 2, 0), 0);
  const names = ['c3o'];
  const [ref, viaGptq, viaRtn] = [await outputs(m, names), await outputs(gq.model, names), await outputs(rtn, names)];
  const eG = err(ref, viaGptq), eR = err(ref, viaRtn);
  assert.ok(eG < eR, `GPTQ squared error ${eG.toExponential(3)} < round-to-nearest ${eR.toExponential(3)}`);
});

test('GPTQ for a CPU build rounds onto the grid that cannot saturate without VNNI (7-bit for the 3-channel Conv, paired ±127 for the 4-channel ones, ±127 depthwise), and the QDQ build stores exactly those integers', async () => {
  const m = hardSwishModel();
  // As a CPU build asks it (quantize.ts): the reduced range on binary16 scales, the grid the QDQ build stores.
  const gq = applyGptq(m, await collectConvMoments({ model: m, inputName: 'x', frames: frames() }), { weightRange: 'reduced', halfScales: true });
  assert.equal(gq.report.convs, 4);
  const peaks: Record<string, number> = {};
  const pairBound: Record<string, number> = {};
  for (const [name, conv] of [['w1', 'c1'], ['wdw', 'dw'], ['wp', 'proj'], ['w3', 'c3']]) {
    const t = m.graph.initializers.get(name)!;
    const node = m.graph.nodes.find((n) => n.name === conv)!;
    const group = node.attributes.find((a) => a.name === 'group');
    const grid = weightGridFor('Conv', t.dims, group?.type === 'int' ? group.value : 1, 'reduced', true);
    const got = tensorToFloat32(gq.model.graph.initializers.get(name)!);
    const q = quantizePerChannel(got, t.dims[0], undefined, grid);
    const ref = quantizePerChannel(tensorToFloat32(t), t.dims[0], undefined, grid);
    for (let c = 0; c < t.dims[0]; c++) assert.ok(Math.abs(q.scales[c] - ref.scales[c]) <= 1e-6 * ref.scales[c], `${name}[${c}]: the scale of the float weights is kept`);
    const per = got.length / t.dims[0];
    got.forEach((v, i) => assert.ok(Math.abs(v / q.scales[Math.floor(i / per)] - q.data[i]) < 1e-3, `${name}[${i}] = ${v} is on the grid`));
    peaks[name] = Math.max(...Array.from(q.data, Math.abs));
    // Each channel reaches the end of its grid: its largest weight at ±qmax or its largest pair at INT8_PAIR_MAX.
    let worst = 0;
    for (let c = 0; c < t.dims[0]; c++) {
      const ints = q.data.subarray(c * per, (c + 1) * per);
      const end = Math.max(Math.max(...Array.from(ints, Math.abs)) / grid.qmax, pairPeak(ints, 0, per, grid) / INT8_PAIR_MAX);
      assert.equal(end, 1, `${name}[${c}] reaches the end of its grid`);
      worst = Math.max(worst, pairPeak(ints, 0, per, grid));
    }
    pairBound[name] = worst;
  }
  assert.equal(peaks.wdw, 127);
  assert.equal(peaks.w1, 63, 'c1 reads 3 channels: 7-bit');
  for (const name of ['wp', 'w3']) {
    assert.ok(peaks[name] > 63, `${name} uses more than the 7-bit grid (${peaks[name]})`);
    assert.ok(pairBound[name] <= INT8_PAIR_MAX, `${name}: no pair sums past ${INT8_PAIR_MAX} (${pairBound[name]})`);
  }
  // The CPU QDQ build of the GPTQ model stores exactly these values: int8 × scale = the GPTQ weight.
  const plan = planQuantization(gq.model, { target: 'cpu' });
  const { model: q } = insertQdq(plan, new Map(plan.activations.map((t) => [t, { min: -4, max: 4 }])));
  // A 1×1 Conv into the float head runs as a MatMul (float-head-matmul.ts) with its weights stored transposed.
  const stored = new Map(q.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'MatMul').map((n) => [n.opType === 'MatMul' ? n.name.replace(/~mm\/matmul$/, '') : n.name, n.inputs[1]]));
  for (const [name, conv] of [['w1', 'c1'], ['wdw', 'dw'], ['wp', 'proj'], ['w3', 'c3']]) {
    const dq = q.graph.nodes.find((n) => n.outputs[0] === stored.get(conv));
    assert.ok(dq?.opType === 'DequantizeLinear', `${conv} reads dequantized int8 weights`);
    const w8 = q.graph.initializers.get(dq.inputs[0])!, sc = constFloats(q.graph, dq.inputs[1]);
    const raw = new Int8Array(w8.data.buffer, w8.data.byteOffset, w8.data.byteLength);
    const [K, C] = w8.dims.length === 2 ? [w8.dims[1], w8.dims[0]] : [w8.dims[0], 0];
    const ints = w8.dims.length === 2 ? Int8Array.from({ length: raw.length }, (_, i) => raw[(i % C) * K + Math.floor(i / C)]) : raw;
    const got = tensorToFloat32(gq.model.graph.initializers.get(name)!), per = got.length / K;
    assert.equal(Math.max(...Array.from(ints, Math.abs)), (peaks as Record<string, number>)[name], `${conv}: stored peak`);
    got.forEach((v, i) => assert.ok(Math.abs(ints[i] * sc[Math.floor(i / per)] - v) <= 1e-5 * sc[Math.floor(i / per)], `${conv}[${i}]: stored ${ints[i]} × scale is the GPTQ weight ${v}`));
  }
});

test('GPTQ\'s factor: U is upper triangular with a positive diagonal and Uᵀ·U is the inverse of the permuted, damped H', () => {
  const d = 7, P = 5; // P < d: H alone is singular, the damping makes it invertible
  let seed = 11;
  const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  const V = Array.from({ length: d * P }, r);
  const H = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) for (let q = 0; q < P; q++) H[i * d + j] += V[i * P + q] * V[j * P + q];
  const order = [3, 0, 6, 1, 5, 2, 4], damp = 0.01;
  const U = inverseCholeskyUpper(H, d, order, damp)!;
  let mean = 0;
  for (let i = 0; i < d; i++) mean += H[i * d + i] / d;
  const Pm = (a: number, b: number) => { const [i, j] = [order[a], order[b]].sort((x, y) => x - y); return H[i * d + j] + (a === b ? damp * mean : 0); };
  for (let a = 0; a < d; a++) {
    assert.ok(U[a * d + a] > 0, `U[${a}][${a}] > 0`);
    for (let b = 0; b < a; b++) assert.equal(U[a * d + b], 0, `U[${a}][${b}] below the diagonal`);
  }
  // (Uᵀ·U)·P = I
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
    let s = 0;
    for (let k = 0; k < d; k++) { let uu = 0; for (let m = 0; m < d; m++) uu += U[m * d + a] * U[m * d + k]; s += uu * Pm(k, b); }
    assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-9, `(UᵀU·P)[${a}][${b}] = ${s}`);
  }
});

test('a bias that would overflow int32 raises its channel weight scale instead of saturating', () => {
  // A squeeze-excite Conv of the CenterNet: input scale 2.8e-5, weights ~1e-6, biases near 1.5.
  const inputScale = 2.8e-5;
  const w = Float32Array.from([1e-6, -2e-6, 5e-7, 1e-6, 0.5, -0.25]);
  const b = Float32Array.from([1.5, 0.2]);
  const plain = quantizeBias(b, inputScale, quantizePerChannel(w, 2).scales);
  assert.equal(plain.data[0], 2147483647, 'without the floor channel 0 saturates');
  const floor = biasScaleFloor(b, inputScale);
  const qw = quantizePerChannel(w, 2, floor);
  const qb = quantizeBias(b, inputScale, qw.scales);
  for (let c = 0; c < 2; c++) {
    assert.ok(Math.abs(qb.data[c]) <= 2 ** 30, `bias ${c} fits: ${qb.data[c]}`);
    assert.ok(Math.abs(qb.data[c] * qb.scales[c] - b[c]) <= qb.scales[c], `bias ${c} exact to one step`);
  }
  assert.equal(qw.scales[1], quantizePerChannel(w, 2).scales[1], 'a channel that fits keeps max|w|/127');
});
