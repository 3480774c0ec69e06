/**
 * The INT8 commands end to end, as an operator runs them: `fleetctl model quantize` (report, model,
 * usage errors), `fleetctl model evaluate` (JSON report, exit code = gate decision) and
 * `fleetctl model publish --precision int8`, which writes a build that passes the gate and refuses,
 * writing nothing, one that does not (ranges at the 1st percentile clip every activation).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { commandOutcome, runCli } from '../helpers/cli.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';
import { assertOnnxChecks, onnxCheckerMissing } from '../helpers/onnx-checker.js';
import { decodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType } from '../../fleet-server/src/convert/onnx/model.js';
import { parseTrtCalibrationTable } from '../../fleet-server/src/quantize/trt-table.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const FACES = 'assets/images/faces';
const dir = tempDirForFile('ef-quantize-cli-');
const skip = missingAssets(MODEL, FACES);

interface QuantizeReport { method: string; calibrationFrames: number; sizeRatio: number; stats: { quantizedActivations: number; quantizedWeights: number }; ranges: Record<string, unknown> }
interface EvaluateJson { ok: boolean; decision: { pass: boolean; reason: string }; report: { frames: number; agreementMap: number; mapDrop: number; atThreshold: { f1Drop: number }; comparison?: { candidate: string; agreementMap: number; difference: number; differenceCi95: [number, number] } } }

test('fleetctl model quantize → evaluate → publish: a passing INT8 build is published with its gate decision', { skip, timeout: 180_000 }, async () => {
  const out = join(dir, 'bf.int8.onnx'), report = join(dir, 'bf.report.json');
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--method', 'entropy', '-o', out, '--report', report], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /wrote .*bf\.int8\.onnx \(.*× of FP32; \d+ activations, \d+ weights quantized; 6 calibration frames, entropy, reduced weight range\)/);
  const r = JSON.parse(readFileSync(report, 'utf8')) as QuantizeReport;
  assert.equal(r.method, 'entropy');
  assert.equal(r.calibrationFrames, 6);
  assert.ok(r.sizeRatio > 0.2 && r.sizeRatio < 0.5, `size ratio ${r.sizeRatio}`);
  assert.ok(Object.keys(r.ranges).length >= r.stats.quantizedActivations, 'the report lists the calibrated ranges');
  assert.ok(existsSync(join(dir, 'bf.int8.meta.json')), 'metadata copied next to the INT8 model');
  const session = await ort.InferenceSession.create(out);
  await session.release();
  const again = await runCli('fleetctl', ['model', 'quantize', '--model', out, '--calib', FACES, '-o', join(dir, 'twice.onnx')], { timeoutMs: 60_000 });
  assert.equal(again.code, 4, again.stdout);
  assert.match(again.stderr, /is already quantized \(INT8\); quantize its FP32 model instead/);

  // --compare: the FP32 model itself as the other build agrees 100 with itself, on the same frames.
  const ev = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', out, '--data', FACES, '--compare', MODEL, '--json'], { timeoutMs: 60_000 });
  const e = JSON.parse(ev.stdout.trim().split('\n').pop()!) as EvaluateJson;
  assert.equal(e.report.frames, 6);
  assert.ok(e.report.agreementMap >= 0 && e.report.agreementMap <= 100);
  assert.equal(ev.code, e.report.mapDrop <= 1.0 && e.report.atThreshold.f1Drop <= 3 ? 0 : 1, 'exit code follows the gate (mAP and F1 at the threshold)');
  const cmp = e.report.comparison!;
  assert.equal(cmp.candidate, MODEL);
  assert.equal(cmp.agreementMap, 100);
  assert.ok(Math.abs(cmp.difference - (100 - e.report.agreementMap)) < 1e-9, `difference ${cmp.difference}`);
  assert.ok(cmp.differenceCi95[0] >= 0 && cmp.differenceCi95[0] <= cmp.difference && cmp.difference <= cmp.differenceCi95[1], `interval ${cmp.differenceCi95}`);
  const text = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', MODEL, '--data', FACES, '--frames', '2', '--compare', MODEL], { timeoutMs: 60_000 });
  assert.match(text.stdout, /\ncompared with \S+model\.onnx: agreement mAP@0\.5 100\.00, \+0\.0 points against the candidate \(paired 95% interval \+0\.0 to \+0\.0: these frames do not tell them apart\)\n/);
  const other = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', out, '--data', FACES, '--frames', '2', '--compare', 'assets/models/coco-centernet/model.onnx'], { timeoutMs: 60_000 });
  assert.equal(other.code, 5, other.stdout);
  assert.match(other.stderr, /The --compare model assets\/models\/coco-centernet\/model\.onnx is not a build of the reference/);

  const pub = join(dir, 'published');
  // This test is the publish flow of a build the gate passes, not BlazeFace's accuracy: both limits
  // are opened (six photos, 22 faces: one face whose score sits at the 0.5 threshold moves F1 by 2–4
  // points between builds that agree to 1e-7). The refusals are tested below and in gate-threshold.test.ts.
  const p = await runCli('fleetctl', ['model', 'publish', '--model', out, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--max-drop', '100', '--max-f1-drop', '100', '--out', pub], { timeoutMs: 60_000 });
  assert.equal(p.code, 0, p.stderr);
  const gate = JSON.parse(readFileSync(join(pub, 'gate.json'), 'utf8')) as { precision: string; decision: { pass: boolean } };
  assert.equal(gate.precision, 'int8');
  assert.equal(gate.decision.pass, true);
  assert.ok(existsSync(join(pub, 'model.onnx')) && existsSync(join(pub, 'model.meta.json')), 'written under the names the registry publish reads');

  // The documented second step: the directory goes into the registry as a signed int8 version.
  const reg = join(dir, 'registry');
  const r2 = await runCli('fleetctl', ['model', 'publish', pub, '--data-dir', reg, '--create', '--version', '1.0.0-int8'], { timeoutMs: 60_000 });
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /published \S+@1\.0\.0-int8 onnx-cpu int8/);

  // An INT8 file labelled fp32 would skip the gate: refused in both forms, nothing written.
  const asFp32 = join(dir, 'as-fp32');
  const f = await runCli('fleetctl', ['model', 'publish', '--model', out, '--precision', 'fp32', '--out', asFp32], { timeoutMs: 60_000 });
  assert.notEqual(f.code, 0, f.stdout);
  assert.match(f.stderr, /is an INT8 model .* but was given as fp32/);
  assert.ok(!existsSync(asFp32));
  // A version is a directory name in the registry: one that would climb out of it is refused.
  const escape = await runCli('fleetctl', ['model', 'publish', pub, '--data-dir', reg, '--version', '../../escape', '--precision', 'int8'], { timeoutMs: 60_000 });
  assert.equal(escape.code, 4, escape.stderr);
  assert.match(escape.stderr, /\/version expected .* but received/);
  assert.ok(!existsSync(join(dir, 'escape')));
  rmSync(join(pub, 'gate.json'));
  const noGate = await runCli('fleetctl', ['model', 'publish', pub, '--data-dir', reg, '--version', '1.0.1-int8'], { timeoutMs: 60_000 });
  assert.notEqual(noGate.code, 0, noGate.stdout);
  assert.match(noGate.stderr, /is an INT8 model .* but was given as fp32/);
});

test('fleetctl model publish refuses an INT8 build that fails the gate, writes nothing and offers FP16/FP32', { skip, timeout: 180_000 }, async () => {
  const bad = join(dir, 'bf.clipped.onnx');
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--frames', '2', '--method', 'percentile', '--percentile', '1', '--no-gptq', '-o', bad], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  const pub = join(dir, 'refused');
  const p = await runCli('fleetctl', ['model', 'publish', '--model', bad, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--out', pub], { timeoutMs: 60_000 });
  assert.equal(p.code, 1, p.stdout);
  assert.match(p.stderr, /refused: .*\noffer instead: fp16, fp32/);
  assert.ok(!existsSync(pub), 'nothing written for a refused build');
});

test('fleetctl model quantize --target tensorrt writes symmetric int8 activations and the calibration table for them', { skip, timeout: 180_000 }, async () => {
  const out = join(dir, 'bf.trt.onnx');
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--frames', '2', '--target', 'tensorrt', '--trt-table', '-o', out], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  const g = decodeModel(new Uint8Array(readFileSync(out))).graph;
  const qs = g.nodes.filter((n) => n.opType === 'QuantizeLinear');
  assert.ok(qs.length > 20, `${qs.length} activation Qs`);
  for (const n of qs) {
    const z = g.initializers.get(n.inputs[2]);
    assert.equal(z?.dataType, DataType.INT8, `${n.name}: int8 zero point`);
    assert.deepEqual([...(z?.data ?? [])], [0], `${n.name}: symmetric (zero point 0)`);
  }
  const table = parseTrtCalibrationTable(readFileSync(join(dir, 'bf.trt.calib.cache'), 'utf8'));
  const activations = new Set(qs.map((n) => n.inputs[0]));
  const named = [...table.scales.keys()].filter((k) => activations.has(k)).length;
  assert.ok(named >= activations.size * 0.9, `${named} of ${activations.size} quantized activations in the table`);
  const session = await ort.InferenceSession.create(out);
  await session.release();
});

test('fleetctl model quantize --exclude keeps that Conv float where onnxruntime runs it; --target-snr Convs store int8 weights onnxruntime folds at load; the file passes the ONNX checker', { skip, timeout: 180_000 }, async (t) => {
  const node = 'StatefulPartitionedCall/functional_1/depthwise_conv2d_1/depthwise';
  const out = join(dir, 'bf.excl.onnx'), report = join(dir, 'bf.excl.json');
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--frames', '2', '--exclude', node, '--target-snr', '30', '-o', out, '--report', report], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  const r = JSON.parse(readFileSync(report, 'utf8')) as { excluded: string[]; keptFloat: string[]; floatConvWeights: string; stats: { int8WeightFloatConvs: number } };
  assert.deepEqual(r.excluded, [node]);
  assert.equal(r.floatConvWeights, 'int8');
  assert.ok(r.keptFloat.length > 0 && r.stats.int8WeightFloatConvs > 0, JSON.stringify(r.stats));
  assert.match(q.stdout, new RegExp(`mixed precision: ${r.keptFloat.length} activations kept float, \\d+ nodes computing in float; ${r.stats.int8WeightFloatConvs} of their Convs store int8 weights \\(--float-weights int8\\)`));
  const g = decodeModel(new Uint8Array(readFileSync(out))).graph;
  const conv = g.nodes.find((n) => n.name === node);
  assert.equal(conv && g.initializers.get(conv.inputs[1])?.dataType, DataType.FLOAT, 'the excluded Conv keeps its float (unrounded: GPTQ left it alone) weights in the file');
  // Convs whose weights are an int8 initializer's Cast times a scale.
  const int8Reads = (gr: typeof g) => gr.nodes.filter((n) => {
    const mul = n.opType === 'Conv' ? gr.nodes.find((m) => m.opType === 'Mul' && m.outputs[0] === n.inputs[1]) : undefined;
    return mul !== undefined && gr.nodes.some((c) => c.opType === 'Cast' && mul.inputs.includes(c.outputs[0]) && gr.initializers.get(c.inputs[0])?.dataType === DataType.INT8);
  }).length;
  assert.equal(int8Reads(g), r.stats.int8WeightFloatConvs, 'each such Conv reads int8 weights through a Cast and a Mul');
  // What onnxruntime runs: its own rewrite would quantize a float Conv fed by a per-tensor DQ; the Casts of int8 weights are folded.
  const optimized = join(dir, 'bf.excl.opt.onnx');
  const s = await ort.InferenceSession.create(out, { graphOptimizationLevel: 'extended', optimizedModelFilePath: optimized });
  await s.release();
  const opt = decodeModel(new Uint8Array(readFileSync(optimized))).graph;
  const ran = opt.nodes.filter((n) => n.name.startsWith(node));
  assert.deepEqual(ran.map((n) => n.opType), ['Conv'], `${node} as onnxruntime runs it`);
  assert.equal(int8Reads(opt), 0, 'onnxruntime folded the int8 weights into float initializers at load');
  if (onnxCheckerMissing) t.diagnostic(onnxCheckerMissing); else assertOnnxChecks(out);
});

test('fleetctl model quantize names the bad option and what it expects', { skip }, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--method', 'kl'], /Expected --method minmax, entropy or percentile but received "kl"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--method', 'percentile', '--percentile', '0'], /Expected --percentile to be a percentile in \(0, 100\] but received "0"/],
    // Number() reads these as 16 and 0; they are typos, not percentiles or frame counts.
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--method', 'percentile', '--percentile', '0x10'], /Expected --percentile to be a percentile in \(0, 100\] but received "0x10"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--target-snr', ''], /Expected --target-snr to be a number of dB but received ""/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--frames', '1.5'], /Expected --frames to be a positive integer but received "1.5"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--percentile', '99.9'], /--percentile applies to --method percentile, but the method is entropy/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--per-channel', '--per-tensor'], /one of --per-channel and --per-tensor, not both/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--weight-range', '7bit'], /Expected --weight-range reduced or full but received "7bit"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--target', 'tensorrt', '--weight-range', 'reduced'], /--weight-range reduced applies to --target cpu/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--bias', 'int8'], /Expected --bias float or int32 but received "int8"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--target', 'tensorrt', '--bias', 'int32'], /--bias int32 applies to --target cpu/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--target-snr', '30', '--float-weights', 'int4'], /Expected --float-weights int8 or float but received "int4"/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--float-weights', 'float'], /--float-weights applies to --target-snr builds .*add --target-snr DB or drop --float-weights/],
    [['--model', MODEL, '--calib', FACES, '-o', join(dir, 'x.onnx'), '--target', 'tensorrt', '--target-snr', '30', '--float-weights', 'int8'], /--float-weights int8 applies to --target cpu/],
    [['--model', MODEL, '-o', join(dir, 'x.onnx')], /Expected --calib DIR\|VIDEO/],
    // Checked before calibrating: the input model is never overwritten, a directory is not a file name.
    [['--model', MODEL, '--calib', FACES, '-o', MODEL], /would replace the input model/],
    [['--model', MODEL, '--calib', FACES, '-o', dir], /is a directory/],
  ];
  // The first through the binary (exit code 2, message on stderr), the rest in this process (commandOutcome).
  const [[args0, message0], ...rest] = cases;
  const r = await runCli('fleetctl', ['model', 'quantize', ...args0]);
  assert.equal(r.code, 2, `${args0.join(' ')}: ${r.stdout}`);
  assert.match(r.stderr, message0);
  const { command } = await import('../../fleet-server/src/cli/commands/model-quantize.js');
  for (const [args, message] of rest) {
    const f = await commandOutcome(command, args);
    assert.equal(f.code, 2, `${args.join(' ')}: ${f.message}`);
    assert.match(f.message, message);
  }
  // An --exclude that names nothing in the model is an error, not a silent no-op.
  const ex = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--exclude', 'NoSuchNode', '-o', join(dir, 'ex.onnx')], { timeoutMs: 60_000 });
  assert.equal(ex.code, 4, ex.stdout);
  assert.match(ex.stderr, /--exclude names "NoSuchNode", which is neither a node nor a node's first output/);
  assert.ok(!existsSync(join(dir, 'ex.onnx')));
});

test('fleetctl model evaluate and quantize name the input at fault: a model of another family, a missing labels file, a file that is no video', { skip, timeout: 120_000 }, async () => {
  const centernet = 'assets/models/coco-centernet/model.onnx';
  if (existsSync(centernet)) {
    const other = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', centernet, '--data', FACES], { timeoutMs: 60_000 });
    assert.equal(other.code, 5, other.stdout);
    assert.match(other.stderr, /is not a build of the reference .*: it lacks input input:0/);
  }
  const labels = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', MODEL, '--data', FACES, '--labels', join(dir, 'no-labels.json')], { timeoutMs: 60_000 });
  assert.equal(labels.code, 4, labels.stdout);
  assert.match(labels.stderr, /Cannot read the labels file .*no-labels\.json/);
  const fake = join(dir, 'fake.avi');
  writeFileSync(fake, 'not a video');
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', fake, '-o', join(dir, 'fake.int8.onnx')], { timeoutMs: 60_000 });
  assert.equal(q.code, 4, q.stdout);
  assert.match(q.stderr, /Expected a video file GStreamer can decode .* but .*fake\.avi is not one/);
});
