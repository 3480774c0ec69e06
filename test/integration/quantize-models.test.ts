/**
 * INT8 pipeline on the default models: quantize the COCO CenterNet and BlazeFace with a few real
 * calibration frames, load the QDQ models in onnxruntime-node (CPU), pass Debian's ONNX checker
 * (full_check), compare detections with FP32 (the floors leave room for 3–6 frames' noise: the
 * CenterNet measured 96–100 here with the INT8 preparation, 10–40 before it; see docs/benchmarks.md;
 * the gate decides what ships), check that a Conv kept float gets its unrounded weights back, and
 * that the gate refuses a deliberately broken INT8 model (ranges shrunk 100×) while offering FP16/FP32.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { quantizeModel, calibrateForModel, rangesFor, copyMeta, buildInt8 } from '../../fleet-server/src/quantize/quantize.js';
import { insertQdq, planQuantization } from '../../fleet-server/src/quantize/qdq.js';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType } from '../../fleet-server/src/convert/onnx/model.js';
import { evaluateModels } from '../../fleet-server/src/quantize/evaluate.js';
import { decideGate } from '../../fleet-server/src/quantize/gate.js';
import { assertOnnxChecks, onnxCheckerMissing } from '../helpers/onnx-checker.js';
import { constFloats } from '../helpers/onnx-consts.js';
import { parseTrtCalibrationFlatbuffer, parseTrtCalibrationTable } from '../../fleet-server/src/quantize/trt-table.js';

const CENTERNET = 'assets/models/coco-centernet/model.onnx';
const BLAZEFACE = 'assets/models/blazeface-back/model.onnx';
const VIDEO = 'assets/video/vtest.avi';
const FACES = 'assets/images/faces';

const missing = [CENTERNET, BLAZEFACE, VIDEO, FACES].filter((p) => !existsSync(p));
const skip = missing.length ? `sample assets missing (${missing.join(', ')}); run scripts/setup.sh and npx tsx scripts/prepare-models.ts` : false;


const cases = [
  { name: 'coco-centernet', model: CENTERNET, calib: { source: VIDEO, maxFrames: 3, stride: 60 }, data: { source: VIDEO, maxFrames: 4, stride: 50, offset: 25 }, minAgreement: 70 },
  { name: 'blazeface-back', model: BLAZEFACE, calib: { source: FACES, maxFrames: 3 }, data: { source: FACES, maxFrames: 6 }, minAgreement: 60 },
];

// The CenterNet calibration (about 30 s here) is made once for the quantize test and the entropy test.
let centernetRun: ReturnType<typeof calibrateForModel> | undefined;
const calibratedCenternet = () => (centernetRun ??= calibrateForModel({ modelPath: CENTERNET, frames: cases[0].calib, target: 'cpu' }));

for (const c of cases) {
  test(`quantize ${c.name}: QDQ int8 + fp16 + TensorRT table load in onnxruntime, pass the ONNX checker, detections overlap FP32's`, { skip, timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-quant-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'model.int8.onnx');
    const r = await quantizeModel({ modelPath: c.model, outputPath: out, frames: c.calib, method: 'minmax', target: 'cpu', fp16: true, trtTable: true }, c.model === CENTERNET ? await calibratedCenternet() : undefined);
    assert.equal(r.calibrationFrames, c.calib.maxFrames);
    assert.ok(r.sizeRatio < 0.5, `int8 size ratio ${r.sizeRatio}`);
    assert.ok(r.stats.quantizedWeights > 10 && r.stats.quantizedActivations > 10, JSON.stringify(r.stats));
    assert.ok(existsSync(join(dir, 'model.int8.meta.json')));
    const ops = new Set<string>();
    const session = await ort.InferenceSession.create(out);
    assert.deepEqual(session.outputNames, (await ort.InferenceSession.create(c.model)).outputNames);
    await session.release();
    for (const n of (await import('../../fleet-server/src/convert/onnx/codec.js')).decodeModel(new Uint8Array(readFileSync(out))).graph.nodes) ops.add(n.opType);
    assert.ok(ops.has('QuantizeLinear') && ops.has('DequantizeLinear'));
    if (onnxCheckerMissing) t.diagnostic(onnxCheckerMissing); else { assertOnnxChecks(out); assertOnnxChecks(r.fp16Output ?? ''); }
    const table = parseTrtCalibrationTable(readFileSync(r.trtTable ?? '', 'utf8'));
    assert.match(table.header, /^TRT-\d+-EntropyCalibration2$/);
    assert.ok(table.scales.size > 10);
    // onnxruntime's TensorRT EP table holds the same tensors, amax = 127 × the text table's scale.
    const fb = parseTrtCalibrationFlatbuffer(readFileSync(r.trtFlatbuffer ?? ''));
    assert.deepEqual([...fb.keys()].sort(), [...table.scales.keys()].sort());
    for (const [name, scale] of table.scales) {
      const amax = fb.get(name) ?? NaN;
      // An all-zero tensor: amax 0 in the EP table, scale 1 (any) in TensorRT's.
      if (amax === 0) continue;
      assert.ok(Math.abs(amax - scale * 127) <= 1e-5 * Math.max(1, amax), `${name}: ${amax} vs ${scale * 127}`);
    }
    const ev = await evaluateModels({ reference: c.model, candidate: out, data: c.data });
    t.diagnostic(`${c.name} int8 minmax: size ${r.sizeRatio.toFixed(3)}×, agreement mAP@0.5 ${ev.agreementMap.toFixed(1)}, SNR ${JSON.stringify(Object.fromEntries(Object.entries(ev.outputSnrDb).map(([k, v]) => [k, Number(v.toFixed(1))])))}`);
    assert.ok(ev.perClass.some((p) => p.referenceCount > 0), 'FP32 found nothing to compare against');
    assert.ok(ev.agreementMap >= c.minAgreement, `agreement ${ev.agreementMap}`);
    const fp16 = await evaluateModels({ reference: c.model, candidate: r.fp16Output ?? '', data: c.data });
    assert.ok(fp16.agreementMap >= 95, `fp16 agreement ${fp16.agreementMap}`);
    // FP16 comes from the model as given, not from the GPTQ-rounded weights the INT8 build uses: fp16
    // weights alone keep every output far above the ~20 dB of int8-grid weights.
    const fp16Snr = Math.min(...Object.values(fp16.outputSnrDb));
    t.diagnostic(`${c.name} fp16: output SNR ≥ ${fp16Snr.toFixed(1)} dB`);
    assert.ok(fp16Snr >= 40, `fp16 output SNR ${fp16Snr.toFixed(1)} dB`);
  });
}

// One BlazeFace calibration for the two tests below: neither changes the run (buildInt8, rangesFor and
// planQuantization/insertQdq build new models from it; the entropy test builds two from one run too).
let blazefaceRun: ReturnType<typeof calibrateForModel> | undefined;
const calibratedBlazeface = () => (blazefaceRun ??= calibrateForModel({ modelPath: BLAZEFACE, frames: { source: FACES, maxFrames: 2 }, target: 'cpu' }));

test('mixed precision: a Conv that reads an activation kept float stores its GPTQ integers as int8 (or, with floatConvWeights float, its unrounded weights), the int8 Convs their GPTQ grid', { skip, timeout: 60_000 }, async () => {
  const run = await calibratedBlazeface();
  assert.ok(run.gptqConvs > 0, 'GPTQ ran');
  const g = run.source.graph;
  const convs = g.nodes.filter((n) => n.opType === 'Conv' && !g.initializers.has(n.inputs[0]) && g.nodes.some((p) => p.outputs.includes(n.inputs[0])));
  const floatConv = convs[3], int8Conv = convs[5];
  const bytes = (m: typeof run.source, name: string) => Buffer.from(m.graph.initializers.get(name)!.data).toString('hex');
  assert.notEqual(bytes(run.source, floatConv.inputs[1]), bytes(run.unrounded, floatConv.inputs[1]), 'GPTQ moved the weights');
  const keepFloat = [floatConv.inputs[0]];
  // Found by node name: a CPU build renames values (passes.compactNames) but keeps the Convs' names.
  const unrounded = buildInt8(run, { method: 'minmax', keepFloat, floatConvWeights: 'float' });
  const built = unrounded.model.graph.nodes.find((n) => n.name === floatConv.name)!;
  assert.equal(bytes(unrounded.model, built.inputs[1]), bytes(run.unrounded, floatConv.inputs[1]), 'the float Conv has the unrounded weights');
  const other = unrounded.model.graph.nodes.find((n) => n.name === int8Conv.name)!;
  assert.ok(!unrounded.model.graph.initializers.has(other.inputs[1]), 'the other Conv reads int8 weights through a DequantizeLinear');
  // The default: the integers GPTQ chose, int8 in the file, read as int8 × scale: exactly GPTQ's float weights.
  const small = buildInt8(run, { method: 'minmax', keepFloat });
  assert.equal(small.stats.int8WeightFloatConvs, 1);
  const sg = small.model.graph;
  const conv = sg.nodes.find((n) => n.name === floatConv.name)!;
  const mul = sg.nodes.find((n) => n.opType === 'Mul' && n.outputs[0] === conv.inputs[1])!;
  const w8 = sg.initializers.get(sg.nodes.find((n) => n.opType === 'Cast' && n.outputs[0] === mul.inputs[0])!.inputs[0])!;
  assert.equal(w8.dataType, DataType.INT8);
  const q = new Int8Array(w8.data.slice().buffer), scales = constFloats(sg, mul.inputs[1]);
  const per = q.length / scales.length;
  // (+ 0: GPTQ may leave a −0, which int8 stores as 0.)
  assert.deepEqual(Float32Array.from(q, (v, k) => v * scales[Math.floor(k / per)] + 0), Float32Array.from(constFloats(g, floatConv.inputs[1]), (v) => v + 0), 'int8 × scale is GPTQ\'s weight, exactly');
  const saved = encodeModel(unrounded.model).length - encodeModel(small.model).length;
  assert.ok(saved > 2 * q.length, `${saved} bytes smaller for ${q.length} weights (3 a weight, less the Cast, Mul and scales)`);
});

test('the gate refuses a deliberately broken INT8 model and offers FP16/FP32', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-gate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = await calibratedBlazeface();
  const ranges = rangesFor(run, { method: 'minmax' });
  for (const [k, v] of ranges) ranges.set(k, { min: v.min / 100, max: v.max / 100 });
  const bad = join(dir, 'bad.onnx');
  await writeFile(bad, encodeModel(insertQdq(planQuantization(run.source, { target: 'cpu' }), ranges).model));
  await copyMeta(BLAZEFACE, bad);
  const report = await evaluateModels({ reference: BLAZEFACE, candidate: bad, data: { source: FACES, maxFrames: 6 } });
  const decision = decideGate(report);
  assert.equal(decision.pass, false, `gate passed a broken model: ${decision.reason}`);
  assert.deepEqual(decision.offer, ['fp16', 'fp32']);
  const self = decideGate(await evaluateModels({ reference: BLAZEFACE, candidate: BLAZEFACE, data: { source: FACES, maxFrames: 2 } }));
  assert.equal(self.pass, true, 'FP32 against itself must pass');
  // Frames without faces: the broken model "agrees" with a reference that finds nothing; that proves nothing.
  const blank = join(dir, 'blank');
  mkdirSync(blank);
  for (const v of [40, 128, 220]) await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: v, g: v, b: v } } }).jpeg().toFile(join(blank, `${v}.jpg`));
  const vacuous = await evaluateModels({ reference: BLAZEFACE, candidate: bad, data: { source: blank, maxFrames: 3 } });
  assert.equal(vacuous.referenceDetections, 0);
  const onBlank = decideGate(vacuous);
  assert.equal(onBlank.pass, false, `gate passed on frames where the reference finds nothing: ${onBlank.reason}`);
  assert.match(onBlank.reason, /detects nothing/);
});

test('--bias int32 on BlazeFace: every int8 Conv with a bias reads int32 through a DQ, onnxruntime fuses them all, the file passes the checker and detects as the default build', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-bias32-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = await calibratedBlazeface();
  const files: Record<string, string> = {};
  const fused: Record<string, string[]> = {};
  for (const bias of ['float', 'int32'] as const) {
    const file = files[bias] = join(dir, `${bias}.onnx`);
    const { model, stats } = buildInt8(run, { method: 'minmax', bias });
    await writeFile(file, encodeModel(model));
    await copyMeta(BLAZEFACE, file);
    const g = model.graph;
    const int32Dq = g.nodes.filter((n) => n.opType === 'DequantizeLinear' && g.initializers.get(n.inputs[0])?.dataType === DataType.INT32);
    const withBias = g.nodes.filter((n) => n.opType === 'Conv' && n.inputs[2]);
    if (bias === 'int32') {
      assert.ok(stats.int32Biases > 20, JSON.stringify(stats));
      assert.equal(int32Dq.length, stats.int32Biases);
      assert.equal(withBias.filter((n) => int32Dq.some((d) => d.outputs[0] === n.inputs[2])).length, stats.int32Biases, 'each int8 Conv with a bias reads it from an int32 DQ');
    } else assert.equal(int32Dq.length, 0);
    const optimized = join(dir, `${bias}.opt.onnx`);
    await (await ort.InferenceSession.create(file, { optimizedModelFilePath: optimized })).release();
    fused[bias] = decodeModel(new Uint8Array(readFileSync(optimized))).graph.nodes.map((n) => n.opType).filter((o) => /Conv/.test(o));
  }
  assert.deepEqual(fused.int32, fused.float, 'the same Convs run as QLinearConv');
  assert.ok(fused.int32.every((o) => o === 'QLinearConv'), fused.int32.join(' '));
  if (onnxCheckerMissing) t.diagnostic(onnxCheckerMissing); else assertOnnxChecks(files.int32);
  // The two files differ only where a bias stored as halves rounds to another integer (at most 1/32 of an output step).
  const ev = await evaluateModels({ reference: files.float, candidate: files.int32, data: { source: FACES, maxFrames: 6 } });
  assert.ok(ev.referenceDetections > 0);
  assert.equal(ev.agreementMap, 100);
  const snr = Math.min(...Object.values(ev.outputSnrDb));
  t.diagnostic(`int32 against float bias: output SNR ≥ ${snr.toFixed(1)} dB`);
  assert.ok(snr >= 40, `output SNR ${snr.toFixed(1)} dB`);
});

test('entropy calibration holds the CenterNet heatmap near min/max calibration (the KL search ignores the ReLU zero spike)', { skip, timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-entropy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = await calibratedCenternet();
  const snr: Record<string, number> = {};
  for (const method of ['minmax', 'entropy'] as const) {
    const file = join(dir, `${method}.onnx`);
    await writeFile(file, encodeModel(buildInt8(run, { method }).model));
    await copyMeta(CENTERNET, file);
    const ev = await evaluateModels({ reference: CENTERNET, candidate: file, data: { source: VIDEO, maxFrames: 4, stride: 50, offset: 25 } });
    snr[method] = Math.min(ev.outputSnrDb['tower_0/keypoints'], ev.outputSnrDb['tower_0/wh']);
  }
  t.diagnostic(`worst of heatmap/size SNR: minmax ${snr.minmax.toFixed(1)} dB, entropy ${snr.entropy.toFixed(1)} dB`);
  assert.ok(snr.entropy >= snr.minmax - 4, `entropy ${snr.entropy.toFixed(1)} dB against minmax ${snr.minmax.toFixed(1)} dB`);
});
