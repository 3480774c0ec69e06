/**
 * The release path end to end: scripts/package-agent.sh (esbuild bundle + native addons) → tarball
 * with a checksum → unpacked in a temporary directory outside the checkout (so no node_modules of
 * the project can be found) → `edge-agent detect` on a real model and image from there, as ONNX and
 * as the TFLite file `fleetctl model export` makes of it; then the
 * installer into a --root twice (an upgrade keeps config and state) and the uninstaller.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const MODEL = join(ROOT, 'assets/models/blazeface-back/model.onnx');
const IMAGE = join(ROOT, 'assets/images/faces/sample1.jpg');

test('release tarball: checksum, detect from the unpacked bundle, install/upgrade/uninstall under --root', { timeout: 180_000 }, (t) => {
  if (!existsSync(MODEL) || !existsSync(IMAGE)) {
    t.skip('assets missing: run scripts/setup.sh for the BlazeFace model and sample faces');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-bundle-'));
  try {
    const t0 = Date.now();
    const tarball = execFileSync('bash', [join(ROOT, 'scripts/package-agent.sh'), '--out', join(dir, 'release')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').at(-1)!;
    const packMs = Date.now() - t0;
    assert.match(tarball, /edge-agent-\d+\.\d+\.\d+[^/]*-linux-(x64|arm64)\.tar\.gz$/);
    execFileSync('sha256sum', ['-c', `${tarball.split('/').at(-1)!}.sha256`], { cwd: join(dir, 'release'), stdio: 'ignore' });

    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-C', unpacked, '-xzf', tarball]);
    const name = tarball.split('/').at(-1)!.replace(/\.tar\.gz$/, '');
    const pkg = join(unpacked, name);
    for (const f of ['dist/edge-agent.mjs', 'dist/ort-worker.mjs', 'bin/edge-agent', 'configs/systemd/edge-agent.service', 'scripts/install-agent.sh', 'VERSION']) {
      assert.ok(existsSync(join(pkg, f)), `${f} in the tarball`);
    }
    assert.ok(!existsSync(join(pkg, 'agent')), 'no TypeScript sources in the tarball');

    const run = spawnSync(join(pkg, 'bin/edge-agent'), ['detect', '--model', MODEL, '--image', IMAGE, '--json'], {
      cwd: unpacked, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir }, timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { ok: boolean; detections: { label: string; score: number }[] };
    assert.equal(out.ok, true);
    const faces = out.detections.filter((d) => d.label === 'face' && d.score > 0.5);
    assert.ok(faces.length >= 2, `faces from the bundle: ${faces.length}`);
    // The same model exported to TFLite runs from the bundle through LiteRT.js (shipped in node_modules).
    const tfl = join(dir, 'tflite', 'model.tflite');
    execFileSync(process.execPath, [join(ROOT, 'bin/fleetctl.js'), 'model', 'export', '--model', MODEL, '--target', 'tflite', '--precision', 'fp16', '-o', tfl], { cwd: ROOT, stdio: 'ignore' });
    const runTfl = spawnSync(join(pkg, 'bin/edge-agent'), ['detect', '--model', tfl, '--image', IMAGE, '--json'], {
      cwd: unpacked, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir }, timeout: 60_000,
    });
    assert.equal(runTfl.status, 0, runTfl.stderr);
    const outTfl = JSON.parse(runTfl.stdout) as { provider: string; detections: { label: string; score: number }[] };
    assert.equal(outTfl.provider, 'wasm');
    assert.equal(outTfl.detections.filter((d) => d.label === 'face' && d.score > 0.5).length, faces.length, 'the TFLite file finds the same faces');

    // Install, change the config, upgrade in place: config and state survive.
    const root = join(dir, 'root');
    const install = (): void => { execFileSync('bash', [join(pkg, 'scripts/install-agent.sh'), '--root', root, '--no-start'], { stdio: 'ignore' }); };
    install();
    const cfg = join(root, 'etc/edge-agent/agent.json');
    assert.match(readFileSync(cfg, 'utf8'), /"stateDir": "\/var\/lib\/edge-agent"/);
    writeFileSync(cfg, '{"deviceId":"kept"}\n');
    writeFileSync(join(root, 'var/lib/edge-agent/outbox.db'), 'state');
    install();
    assert.equal(readFileSync(cfg, 'utf8'), '{"deviceId":"kept"}\n');
    assert.equal(readFileSync(join(root, 'var/lib/edge-agent/outbox.db'), 'utf8'), 'state');
    assert.match(readlinkSync(join(root, 'opt/edge-agent/current')), /^releases\//);
    assert.ok(existsSync(join(root, 'etc/systemd/system/edge-agent.service')));
    execFileSync('bash', [join(pkg, 'scripts/uninstall-agent.sh'), '--root', root], { stdio: 'ignore' });
    assert.ok(!existsSync(join(root, 'opt/edge-agent')) && !existsSync(join(root, 'etc/systemd/system/edge-agent.service')));
    assert.ok(existsSync(cfg), 'uninstall without --purge keeps the config');
    process.stdout.write(`# bundle: packaged in ${packMs} ms, ${faces.length} faces from the unpacked tarball\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
