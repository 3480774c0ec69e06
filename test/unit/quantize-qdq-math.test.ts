/**
 * Quantization arithmetic (ONNX QuantizeLinear semantics), per-channel weight scales, int32 bias,
 * FP16 bit conversion and the TensorRT calibration table text form.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activationParams, allHalfExact, dequantizeValue, halfUp, quantizeBias, quantizePerChannel, quantizeValue, roundHalfEven } from '../../fleet-server/src/quantize/qmath.js';
import { halfBitsToFloat, toHalfBits } from '../../fleet-server/src/quantize/fp16.js';
import { floatHex, parseTrtCalibrationFlatbuffer, parseTrtCalibrationTable, renderTrtCalibrationFlatbuffer, renderTrtCalibrationTable } from '../../fleet-server/src/quantize/trt-table.js';

test('round half to even, as QuantizeLinear', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
});

test('asymmetric activation params put 0 exactly and span the range with 256 levels', () => {
  const p = activationParams({ min: 0, max: 6 }, false);
  assert.equal(p.zeroPoint, -128);
  assert.ok(Math.abs(p.scale - 6 / 255) < 1e-12);
  assert.equal(dequantizeValue(quantizeValue(0, p), p), 0);
  assert.equal(quantizeValue(-3, p), -128, 'negative values clamp to 0 (the folded ReLU)');
  for (const x of [0.1, 1.7, 5.99]) assert.ok(Math.abs(dequantizeValue(quantizeValue(x, p), p) - x) <= p.scale / 2 + 1e-9);
  const q = activationParams({ min: -2, max: 6 }, false);
  assert.ok(Math.abs(dequantizeValue(quantizeValue(-2, q), q) + 2) <= q.scale / 2 + 1e-9);
});

test('symmetric activation params have zero point 0 and scale amax/127', () => {
  const p = activationParams({ min: -3, max: 12.7 }, true);
  assert.equal(p.zeroPoint, 0);
  assert.ok(Math.abs(p.scale - 0.1) < 1e-12);
  assert.deepEqual(activationParams({ min: 0, max: 0 }, true), { scale: 1, zeroPoint: 0 });
});

test('per-channel weights: one scale per output channel, max|w| maps to ±127', () => {
  const w = Float32Array.of(1, -2, 0.5, 0.25, /* channel 1 */ 0.01, 0.02, -0.04, 0);
  const q = quantizePerChannel(w, 2);
  assert.ok(Math.abs(q.scales[0] - 2 / 127) < 1e-7 && Math.abs(q.scales[1] - 0.04 / 127) < 1e-9);
  assert.equal(q.data[1], -127); assert.equal(q.data[6], -127); assert.equal(q.data[7], 0);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(q.data[i] * q.scales[i < 4 ? 0 : 1] - w[i]) <= q.scales[i < 4 ? 0 : 1] / 2 + 1e-9);
  assert.throws(() => quantizePerChannel(w, 3), /3 equal channels/);
});

test('the int32 bias onnxruntime derives from a float bias: scale sIn·sW[c], zero point 0', () => {
  const b = quantizeBias(Float32Array.of(0.5, -1), 0.02, Float32Array.of(0.01, 0.1));
  assert.ok(Math.abs(b.scales[0] - 0.0002) < 1e-9 && Math.abs(b.scales[1] - 0.002) < 1e-9);
  assert.deepEqual(Array.from(b.data), [2500, -500]);
});

test('fp16 bits: exact values, rounding, subnormals, overflow', () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(1e6), 0x7c00);
  assert.equal(toHalfBits(2 ** -24), 0x0001);
  assert.equal(halfBitsToFloat(toHalfBits(0.1)), 0.0999755859375);
  assert.ok(Number.isNaN(halfBitsToFloat(toHalfBits(NaN))));
});

test('halfUp: the nearest binary16 value at or above a scale, float32 noise on a half kept, out of the normal range untouched', () => {
  assert.equal(halfUp(0.25), 0.25, 'a half stays');
  assert.equal(halfUp(0.1), halfBitsToFloat(toHalfBits(0.1) + 1), '0.1 rounds to nearest below it, so up one step');
  assert.equal(halfUp(0.1), 0.10003662109375);
  const h = halfBitsToFloat(toHalfBits(0.1));
  assert.equal(halfUp(Math.fround(h * (1 + 2 ** -20))), h, 'float32 noise above a half is that half');
  assert.equal(halfUp(Math.fround(h * (1 + 2 ** -12))), halfBitsToFloat(toHalfBits(0.1) + 1), 'a real step above is the next half');
  assert.equal(halfUp(2047.9), 2048, 'up across an exponent');
  for (const s of [1e-3, 0.0125, 7e-5, 7.77, 6e4]) {
    const u = halfUp(s);
    assert.ok(u >= s * (1 - 2 ** -16) && u <= s * (1 + 2 ** -10), `${s} → ${u}: at most one half step up`);
    assert.ok(allHalfExact([u]), `${u} is a half`);
  }
  assert.equal(halfUp(1e-5), 1e-5, 'below the normal halves (2^-14): kept, stored float32');
  assert.equal(halfUp(1e5), 1e5, 'above 65504: kept');
  assert.ok(!allHalfExact([0.25, 1e-5]) && !allHalfExact([0.1]) && allHalfExact([0.25, -2, 65504]));
});

test('TensorRT calibration table: header and big-endian hex of amax/127', () => {
  assert.equal(floatHex(1), '3f800000');
  const text = renderTrtCalibrationTable(new Map([['input', { min: -127, max: 50 }], ['conv1:0', { min: 0, max: 12.7 }]]), { trtVersion: 8601 });
  assert.equal(text.split('\n')[0], 'TRT-8601-EntropyCalibration2');
  assert.match(text, /^input: 3f800000$/m);
  const parsed = parseTrtCalibrationTable(text);
  assert.ok(Math.abs((parsed.scales.get('conv1:0') ?? 0) - 0.1) < 1e-7);
});

test('TensorRT EP calibration flatbuffer: TrtTable root without identifier, KeyValue entries sorted by key, amax as text', () => {
  const ranges = new Map([['z_out', { min: -3, max: 2.5 }], ['input', { min: -127, max: 50 }], ['conv1:0', { min: 0, max: 12.7 }]]);
  const bytes = renderTrtCalibrationFlatbuffer(ranges);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const root = dv.getUint32(0, true);
  assert.ok(root >= 4 && root < bytes.length && root % 4 === 0, `root table at ${root}`);
  assert.notEqual(new TextDecoder().decode(bytes.subarray(4, 8)), 'TFL3', 'no file identifier');
  const parsed = parseTrtCalibrationFlatbuffer(bytes);
  assert.deepEqual([...parsed.keys()], ['conv1:0', 'input', 'z_out'], 'sorted by key');
  assert.deepEqual([...parsed.values()], [12.7, 127, 3]);
  // The values are the decimal text std::stof reads.
  const text = new TextDecoder().decode(bytes);
  for (const v of ['12.7', '127', '3']) assert.ok(text.includes(v), `value text ${v}`);
  assert.equal(parseTrtCalibrationFlatbuffer(renderTrtCalibrationFlatbuffer(new Map())).size, 0);
});
