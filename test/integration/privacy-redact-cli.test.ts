/** `edge-agent redact --image IN --out OUT --json` (the real binary) on a group photo and on the plate photo. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import sharp from 'sharp';
import { binaryEntry } from '../helpers/cli.js';

/** Runs the real binary (stdout of this process belongs to the test runner). */
function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [binaryEntry('edge-agent'), 'redact', ...argv], { timeout: 60_000, env: { ...process.env, UV_THREADPOOL_SIZE: '4' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Skips (saying why) when the face photos or the face model's metadata are not installed. */
function facesMissing(t: TestContext, photo: string): boolean {
  if (existsSync(photo) && existsSync('assets/models/blazeface-back/model.meta.json')) return false;
  t.skip('face photos or the BlazeFace model metadata are missing: run scripts/setup.sh and npx tsx scripts/prepare-models.ts');
  return true;
}

interface CliRegion { kind: string; source: string; score: number; box: { x: number; y: number; w: number; h: number }; padded: { x: number; y: number; w: number; h: number } | null }

test('redact writes the redacted image and lists its regions as JSON', async (t) => {
  const photo = 'assets/images/faces/sample6.jpg';
  if (facesMissing(t, photo)) return;
  const dir = mkdtempSync(join(tmpdir(), 'ef-redact-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'out.png');
  const r = await runCli(['--image', photo, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { ok: boolean; regions: CliRegion[]; width: number };
  assert.equal(res.ok, true);
  const faces = res.regions.filter((x) => x.kind === 'face');
  t.diagnostic(`sample6: ${faces.length} faces, ${res.regions.length - faces.length} other regions`);
  assert.equal(faces.length, 4);
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.format, meta.width], ['png', res.width]);

  const lp = 'assets/images/licenseplate_motion.jpg';
  if (!existsSync(lp)) { t.diagnostic(`${lp} missing: plate half skipped`); return; }
  const r2 = await runCli(['--image', lp, '--out', join(dir, 'lp.jpg'), '--vehicle', '0,0,600,482', '--json']);
  const plates = (JSON.parse(r2.stdout) as { regions: CliRegion[] }).regions.filter((x) => x.kind === 'plate');
  assert.ok(plates.length >= 1, 'no plate region for the given vehicle box');
  // The band of a whole-photo vehicle box covers the plate at about (228..360, 222..298).
  assert.ok(plates.some((p) => p.padded && p.padded.x <= 228 && p.padded.y <= 222 && p.padded.x + p.padded.w >= 360 && p.padded.y + p.padded.h >= 298));
  const bad = await runCli(['--image', lp, '--out', join(dir, 'x.jpg'), '--vehicle', '1,2,3', '--json']);
  assert.equal(bad.code, 2, 'a malformed --vehicle is a usage error (exit 2)');
  assert.match(bad.stderr, /Expected --vehicle x,y,w,h/);
});

// `run` and `check-config` read the config's paths relative to the file; redact read them relative to
// the working directory, so `redact --config configs/agent.example.json` could not find the face model.
test('redact --config reads the privacy section\'s paths relative to the config file, as run does', async (t) => {
  const photo = 'assets/images/faces/sample6.jpg';
  if (facesMissing(t, photo)) return;
  const dir = mkdtempSync(join(tmpdir(), 'ef-redact-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The config lives in a directory of its own and names the face model relative to itself: a path
  // that means nothing from the working directory.
  const cfgDir = join(dir, 'etc');
  mkdirSync(cfgDir);
  symlinkSync(resolve('assets/models/blazeface-back'), join(dir, 'faces'));
  const cfg = join(cfgDir, 'agent.json');
  writeFileSync(cfg, JSON.stringify({ privacy: { faces: { modelPath: '../faces/model.onnx' }, plates: { enabled: false } } }));
  const r = await runCli(['--image', photo, '--out', join(dir, 'out.jpg'), '--config', cfg, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { regions: CliRegion[] }).regions.filter((x) => x.kind === 'face').length, 4);
});

test('redact --config leaves the default model paths alone when the file does not name them', async (t) => {
  const photo = 'assets/images/faces/sample6.jpg';
  if (facesMissing(t, photo)) return;
  const dir = mkdtempSync(join(tmpdir(), 'ef-redact-def-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'privacy.json');
  writeFileSync(cfg, JSON.stringify({ redaction: { method: 'pixelate' }, plates: { enabled: false } }));
  const r = await runCli(['--image', photo, '--out', join(dir, 'out.jpg'), '--config', cfg, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { method: string }).method, 'pixelate');
});
