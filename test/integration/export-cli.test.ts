/** `fleetctl model export` end to end: artifacts, copied metadata, the JSON report, and usage errors. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { decodeMlModel } from '../../fleet-server/src/export/coreml/proto.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const dir = mkdtempSync(join(tmpdir(), 'ef-export-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('fleetctl model export writes TFLite and Core ML artifacts with metadata and a report', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const tfl = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'tflite', '--precision', 'fp16', '-o', join(dir, 'bf.tflite'), '--json'], { timeoutMs: 60_000 });
  assert.equal(tfl.code, 0, tfl.stderr);
  const report = JSON.parse(tfl.stdout.trim().split('\n').pop()!) as { ok: boolean; sizeBytes: number; outputs: Array<{ name: string }>; sha256: string };
  assert.ok(report.ok);
  assert.deepEqual(report.outputs.map((o) => o.name).sort(), ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0']);
  const bytes = readFileSync(join(dir, 'bf.tflite'));
  assert.equal(bytes.subarray(4, 8).toString(), 'TFL3');
  assert.equal(bytes.length, report.sizeBytes);
  assert.ok(existsSync(join(dir, 'bf.meta.json')), 'metadata copied next to the artifact');

  const cml = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'coreml', '--precision', 'int8', '-o', join(dir, 'bf.mlmodel')], { timeoutMs: 60_000 });
  assert.equal(cml.code, 0, cml.stderr);
  assert.match(cml.stdout, /wrote .*bf\.mlmodel \(coreml int8/);
  assert.equal(decodeMlModel(readFileSync(join(dir, 'bf.mlmodel'))).layers.length > 50, true);
});

test('fleetctl model export refuses bad arguments with a usage error', async () => {
  const noCalib = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'tflite', '--precision', 'int8', '-o', join(dir, 'x.tflite')]);
  assert.notEqual(noCalib.code, 0);
  assert.match(noCalib.stderr, /--calib/);
  const badTarget = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'onnx', '-o', join(dir, 'x')]);
  assert.notEqual(badTarget.code, 0);
  assert.match(badTarget.stderr, /Expected --target tflite or coreml/);
});
