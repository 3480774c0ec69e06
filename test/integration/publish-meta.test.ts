/**
 * `fleetctl model publish --model M --out DIR` writes the metadata of the model it publishes, or
 * nothing. It copied M.meta.json only when M had one, so a model without metadata (a retrained file
 * handed over alone) inherited the model.meta.json an earlier publish left in DIR, and was signed with
 * the old model's name, labels and preprocess. Now such a model is refused unless --meta names its
 * metadata, and DIR's old metadata and gate.json are removed before the new artifact is written.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { copyMeta } from '../../fleet-server/src/quantize/quantize.js';

const BF = 'assets/models/blazeface-back';
const CN = 'assets/models/coco-centernet';
const FACES = 'assets/images/faces';
const dir = mkdtempSync(join(tmpdir(), 'ef-publish-meta-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const missing = [join(BF, 'model.onnx'), join(CN, 'model.onnx'), FACES].filter((p) => !existsSync(p));
const skip = missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false;

test('a model without metadata is refused unless --meta names it, and never takes the metadata left in DIR', { skip, timeout: 120_000 }, async () => {
  const stage = join(dir, 'stage'), reg = join(dir, 'registry');
  const first = await runCli('fleetctl', ['model', 'publish', '--model', join(BF, 'model.onnx'), '--precision', 'fp32', '--out', stage]);
  assert.equal(first.code, 0, first.stderr);
  const before = readFileSync(join(stage, 'model.meta.json'));

  // A retrained CenterNet handed over without its metadata.
  const retrained = join(dir, 'site-retrained.onnx');
  copyFileSync(join(CN, 'model.onnx'), retrained);
  const r = await runCli('fleetctl', ['model', 'publish', '--model', retrained, '--precision', 'fp32', '--out', stage]);
  assert.equal(r.code, 4, r.stdout);
  assert.match(r.stderr, /site-retrained\.onnx has no metadata \(.*site-retrained\.meta\.json\); give --meta FILE/);
  assert.deepEqual(readFileSync(join(stage, 'model.meta.json')), before, 'nothing written');
  assert.deepEqual(readFileSync(join(stage, 'model.onnx')), readFileSync(join(BF, 'model.onnx')));

  // Metadata that is not JSON is named.
  const broken = join(dir, 'broken.meta.json');
  writeFileSync(broken, '');
  const b = await runCli('fleetctl', ['model', 'publish', '--model', retrained, '--precision', 'fp32', '--meta', broken, '--out', stage]);
  assert.equal(b.code, 4, b.stdout);
  assert.match(b.stderr, /The model metadata .*broken\.meta\.json is not JSON/);

  const ok = await runCli('fleetctl', ['model', 'publish', '--model', retrained, '--precision', 'fp32', '--meta', join(CN, 'model.meta.json'), '--out', stage]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readFileSync(join(stage, 'model.meta.json')), readFileSync(join(CN, 'model.meta.json')));
  const p = await runCli('fleetctl', ['model', 'publish', stage, '--data-dir', reg, '--create', '--version', '2.0.0'], { timeoutMs: 60_000 });
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /published coco-centernet@2\.0\.0 onnx-cpu fp32/);
});

test('an INT8 build without metadata is gated and published with --meta', { skip, timeout: 180_000 }, async () => {
  const int8 = join(dir, 'q', 'bf.int8.onnx');
  mkdirSync(join(dir, 'q'));
  const q = await runCli('fleetctl', ['model', 'quantize', '--model', join(BF, 'model.onnx'), '--calib', FACES, '--frames', '2', '--no-gptq', '-o', int8], { timeoutMs: 120_000 });
  assert.equal(q.code, 0, q.stderr);
  rmSync(join(dir, 'q', 'bf.int8.meta.json'));
  const gateArgs = ['--precision', 'int8', '--reference', join(BF, 'model.onnx'), '--data', FACES, '--max-drop', '100', '--max-f1-drop', '100'];
  const out = join(dir, 'int8');
  const refused = await runCli('fleetctl', ['model', 'publish', '--model', int8, ...gateArgs, '--out', out], { timeoutMs: 120_000 });
  assert.equal(refused.code, 4, refused.stdout);
  assert.ok(!existsSync(out));
  const ok = await runCli('fleetctl', ['model', 'publish', '--model', int8, ...gateArgs, '--meta', join(BF, 'model.meta.json'), '--out', out], { timeoutMs: 120_000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readFileSync(join(out, 'model.meta.json')), readFileSync(join(BF, 'model.meta.json')));
  assert.equal((JSON.parse(readFileSync(join(out, 'gate.json'), 'utf8')) as { decision: { pass: boolean } }).decision.pass, true);
});

test('copyMeta leaves no older metadata beside an artifact whose model has none', async () => {
  const d = join(dir, 'copy');
  mkdirSync(d);
  writeFileSync(join(d, 'out.meta.json'), '{"name":"old"}');
  writeFileSync(join(d, 'src.onnx'), '');
  await copyMeta(join(d, 'src.onnx'), join(d, 'out.onnx'));
  assert.ok(!existsSync(join(d, 'out.meta.json')));
  writeFileSync(join(d, 'src.meta.json'), '{"name":"new"}');
  await copyMeta(join(d, 'src.onnx'), join(d, 'out.onnx'));
  assert.equal(readFileSync(join(d, 'out.meta.json'), 'utf8'), '{"name":"new"}');
});
