/**
 * A gate decision vouches only for the file it judged. gate.json held only {precision, decision},
 * so `fleetctl model publish DIR` signed any INT8 file later copied or exported into a directory with
 * a passing gate.json, with that gate's mapDrop in its manifest. Now gate.json records the artifact's
 * sha256 and size, and the registry publish refuses (E_GATE) a file they do not describe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const FACES = 'assets/images/faces';
const dir = tempDirForFile('ef-gate-binding-');
const skip = missingAssets(MODEL, FACES);

async function quantize(out: string, extra: string[]): Promise<string> {
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', MODEL, '--calib', FACES, '--frames', '2', '--no-gptq', ...extra, '-o', out], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  return out;
}

test('publish DIR refuses an INT8 file that is not the one its gate.json judged', { skip, timeout: 240_000 }, async () => {
  const gated = await quantize(join(dir, 'gated.onnx'), []);
  const other = await quantize(join(dir, 'other.onnx'), ['--method', 'percentile', '--percentile', '1']);
  const stage = join(dir, 'stage'), reg = join(dir, 'registry');
  // Limits raised: the binding is under test here, not these quick builds' accuracy.
  const g = await runCli('fleetctl', ['model', 'publish', '--model', gated, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--max-drop', '100', '--max-f1-drop', '100', '--out', stage], { timeoutMs: 120_000 });
  assert.equal(g.code, 0, g.stderr);
  const gate = JSON.parse(readFileSync(join(stage, 'gate.json'), 'utf8')) as { artifact: { file: string; sha256: string; size: number } };
  const bytes = readFileSync(join(stage, 'model.onnx'));
  assert.deepEqual(gate.artifact, { file: 'model.onnx', sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });

  // Another build put into the gated directory: refused, nothing signed.
  copyFileSync(other, join(stage, 'model.onnx'));
  const r = await runCli('fleetctl', ['model', 'publish', stage, '--data-dir', reg, '--create', '--version', '1.0.0-int8'], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /gate\.json was written for another file \(sha256 [0-9a-f]{12}…, \d+ bytes\) than .*model\.onnx \(sha256 [0-9a-f]{12}…, \d+ bytes\); run the gate again on this file/);
  // Naming int8 does not get round it.
  const asInt8 = await runCli('fleetctl', ['model', 'publish', stage, '--data-dir', reg, '--version', '1.0.0-int8', '--precision', 'int8'], { timeoutMs: 60_000 });
  assert.equal(asInt8.code, 1, asInt8.stdout);
  assert.match(asInt8.stderr, /was written for another file/);

  // A gate.json from before it recorded the file cannot vouch for anything.
  copyFileSync(gated, join(stage, 'model.onnx'));
  writeFileSync(join(stage, 'gate.json'), JSON.stringify({ precision: 'int8', decision: { pass: true, mapDrop: 0 } }));
  const old = await runCli('fleetctl', ['model', 'publish', stage, '--data-dir', reg, '--version', '1.0.0-int8'], { timeoutMs: 60_000 });
  assert.equal(old.code, 1, old.stdout);
  assert.match(old.stderr, /gate\.json names no artifact checksum \(written by an older fleetctl\), so it cannot vouch for .*model\.onnx; run the gate again/);

  // Gated again, the same file is published with its gate's figures.
  const again = await runCli('fleetctl', ['model', 'publish', '--model', gated, '--precision', 'int8', '--reference', MODEL, '--data', FACES, '--max-drop', '100', '--max-f1-drop', '100', '--out', stage], { timeoutMs: 120_000 });
  assert.equal(again.code, 0, again.stderr);
  const ok = await runCli('fleetctl', ['model', 'publish', stage, '--data-dir', reg, '--version', '1.0.0-int8', '--json'], { timeoutMs: 60_000 });
  assert.equal(ok.code, 0, ok.stderr);
  const shown = JSON.parse(ok.stdout) as { artifact: { precision: string; size: number; manifest: { metrics: { mapDrop?: number } } } };
  assert.equal(shown.artifact.precision, 'int8');
  assert.equal(shown.artifact.size, statSync(gated).size);
  assert.equal(typeof shown.artifact.manifest.metrics.mapDrop, 'number');
});
