/**
 * `edge-agent redact` run from another directory: it looked for its default models (vehicle
 * detector, face model, text model) relative to the working directory, so from elsewhere it found
 * no vehicles and said nothing, and plates were never checked. The defaults now resolve from the
 * checkout too, and a missing detector or text model is named in the output.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { binaryEntry } from '../helpers/cli.js';

const BIN = binaryEntry('edge-agent');
const PHOTO = resolve('assets/images/licenseplate_motion.jpg');

function runCli(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, 'redact', ...argv], { cwd, timeout: 60_000, env: { ...process.env, UV_THREADPOOL_SIZE: '4' } }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function missing(t: TestContext): boolean {
  const need = [PHOTO, 'assets/models/coco-centernet/model.meta.json', 'assets/models/blazeface-back/model.meta.json'].filter((p) => !existsSync(p));
  if (need.length) t.skip(`missing ${need.join(', ')}: run scripts/setup.sh`);
  return need.length > 0;
}

interface Result { vehicles: string; warnings: string[]; regions: Array<{ kind: string; source: string }> }

function elsewhere(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ef-redact-cwd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('redact from another directory finds the vehicle detector and hides the plate', async (t) => {
  if (missing(t)) return;
  const dir = elsewhere(t);
  const r = await runCli(['--image', PHOTO, '--out', join(dir, 'out.png'), '--json'], dir);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as Result;
  assert.notEqual(res.vehicles, 'none');
  assert.ok(res.regions.some((x) => x.kind === 'plate'), JSON.stringify(res.regions));
  // With a config that names the face model only (by absolute path), as an operator's would.
  const cfg = join(dir, 'privacy.json');
  writeFileSync(cfg, JSON.stringify({ privacy: { faces: { modelPath: resolve('assets/models/blazeface-back/model.onnx') } } }));
  const r2 = await runCli(['--image', PHOTO, '--out', join(dir, 'out2.png'), '--config', cfg], dir);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /plate/);
});

test('redact says when it has no plate text model', async (t) => {
  if (missing(t)) return;
  const dir = elsewhere(t);
  const cfg = join(dir, 'privacy.json');
  writeFileSync(cfg, JSON.stringify({ plates: { textModelPath: 'no-such/model.onnx' } }));
  const r = await runCli(['--image', PHOTO, '--out', join(dir, 'out.png'), '--config', cfg], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /warning: no plate text model \(.*no-such\/model\.onnx\): each vehicle's plate band is hidden/);
  assert.match(r.stdout, /plate\s+band/);
});
