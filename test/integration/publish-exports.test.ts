/**
 * INT8 TFLite and Core ML exports meet the same accuracy gate as INT8 ONNX. The gate used to load
 * every candidate in onnxruntime, so an INT8 TFLite file could not be published at all (exit 5,
 * "Protobuf parsing failed"), while the same file labelled fp32 was published with no gate. Now the
 * gate runs a TFLite candidate in LiteRT.js (as the agent does) and decodes it with its own
 * metadata; a Core ML model, which only Apple hardware runs, is refused with what to do instead; and
 * INT8 content is recognised in all three formats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';
import { tfliteTensorTypes } from '../../fleet-server/src/export/tflite/inspect.js';
import { TensorType } from '../../fleet-server/src/export/tflite/schema.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const FACES = 'assets/images/faces';
const dir = tempDirForFile('ef-publish-exports-');
const skip = missingAssets(MODEL, FACES);

interface EvaluateJson { ok: boolean; report: { frames: number; referenceDetections: number; mapDrop: number; outputSnrDb: Record<string, number> } }

async function exportTo(file: string, target: 'tflite' | 'coreml', precision: 'fp32' | 'fp16' | 'int8'): Promise<string> {
  const out = join(dir, file);
  const calib = target === 'tflite' && precision === 'int8' ? ['--calib', FACES, '--frames', '6'] : [];
  const r = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', target, '--precision', precision, ...calib, '-o', out], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function evaluate(candidate: string): Promise<EvaluateJson> {
  const ev = await runCli('fleetctl', ['model', 'evaluate', '--reference', MODEL, '--candidate', candidate, '--data', FACES, '--json'], { timeoutMs: 60_000 });
  assert.ok(ev.code === 0 || ev.code === 1, ev.stderr);
  return JSON.parse(ev.stdout.trim().split('\n').pop()!) as EvaluateJson;
}

test('an INT8 TFLite export is evaluated in LiteRT.js, passes the gate, and is published as int8 (not as fp32)', { skip, timeout: 300_000 }, async () => {
  const int8 = await exportTo('bf.int8.tflite', 'tflite', 'int8');
  const fp32 = await exportTo('bf.fp32.tflite', 'tflite', 'fp32');
  const fp16 = await exportTo('bf.fp16.tflite', 'tflite', 'fp16');
  assert.ok(tfliteTensorTypes(readFileSync(int8)).includes(TensorType.INT8));
  assert.ok(!tfliteTensorTypes(readFileSync(fp16)).includes(TensorType.INT8), 'FP16 weights are not INT8');

  // The TFLite file's own outputs are compared: the INT8 one is measurably further from FP32 than the FP32 export.
  const e8 = await evaluate(int8), e32 = await evaluate(fp32);
  assert.equal(e8.report.frames, 6);
  assert.ok(e8.report.referenceDetections > 0);
  const snr8 = Object.values(e8.report.outputSnrDb), snr32 = Object.values(e32.report.outputSnrDb);
  assert.equal(snr8.length, 4, 'SNR on each of the four outputs');
  assert.ok(Math.max(...snr8) < 40 && Math.min(...snr32) > Math.max(...snr8) + 10, `INT8 ${snr8.map((v) => v.toFixed(1))} dB vs FP32 export ${snr32.map((v) => v.toFixed(1))} dB`);

  // Labelled fp32 it would skip the gate: refused, nothing written.
  const asFp32 = join(dir, 'as-fp32');
  const f = await runCli('fleetctl', ['model', 'publish', '--model', int8, '--precision', 'fp32', '--out', asFp32], { timeoutMs: 60_000 });
  assert.equal(f.code, 1, f.stdout);
  assert.match(f.stderr, /bf\.int8\.tflite is an INT8 model \(quantized weights\) but was given as fp32; publish it as int8 through the accuracy gate/);
  assert.ok(!existsSync(asFp32));
  // The FP16 export is not mistaken for INT8.
  const p16 = await runCli('fleetctl', ['model', 'publish', '--model', fp16, '--precision', 'fp16', '--out', join(dir, 'fp16')], { timeoutMs: 60_000 });
  assert.equal(p16.code, 0, p16.stderr);

  // Through the gate at its default limit (1 mAP point), then into the registry as a signed tflite int8 version.
  assert.ok(e8.report.mapDrop <= 1, `the INT8 TFLite build agrees with FP32 on the faces (drop ${e8.report.mapDrop})`);
  const pub = join(dir, 'int8');
  const p = await runCli('fleetctl', ['model', 'publish', '--model', int8, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--out', pub], { timeoutMs: 120_000 });
  assert.equal(p.code, 0, p.stderr);
  const gate = JSON.parse(readFileSync(join(pub, 'gate.json'), 'utf8')) as { precision: string; decision: { pass: boolean } };
  assert.deepEqual([gate.precision, gate.decision.pass], ['int8', true]);
  const r = await runCli('fleetctl', ['model', 'publish', pub, '--target', 'tflite', '--data-dir', join(dir, 'registry'), '--create', '--version', '1.0.0-int8'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /published \S+@1\.0\.0-int8 tflite int8/);
});

test('an INT8 Core ML export cannot be gated here: refused as int8 with the reason, and refused as fp16', { skip, timeout: 120_000 }, async () => {
  const int8 = await exportTo('bf.int8.mlmodel', 'coreml', 'int8');
  const p = await runCli('fleetctl', ['model', 'publish', '--model', int8, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--out', join(dir, 'cml8')], { timeoutMs: 60_000 });
  assert.equal(p.code, 5, p.stdout);
  assert.match(p.stderr, /is a Core ML model, which runs only on Apple hardware, so the accuracy gate cannot run it here/);
  const asFp16 = await runCli('fleetctl', ['model', 'publish', '--model', int8, '--precision', 'fp16', '--out', join(dir, 'cml16')], { timeoutMs: 60_000 });
  assert.equal(asFp16.code, 1, asFp16.stdout);
  assert.match(asFp16.stderr, /is an INT8 model \(quantized weights\) but was given as fp16; the accuracy gate cannot run Core ML here, so publish the Core ML FP16\/FP32 artifact/);
  assert.ok(!existsSync(join(dir, 'cml8')) && !existsSync(join(dir, 'cml16')));
  // The FP16 Core ML export is published as fp16.
  const fp16 = await exportTo('bf.fp16.mlmodel', 'coreml', 'fp16');
  const ok = await runCli('fleetctl', ['model', 'publish', '--model', fp16, '--precision', 'fp16', '--out', join(dir, 'cml-ok')], { timeoutMs: 60_000 });
  assert.equal(ok.code, 0, ok.stderr);
});
