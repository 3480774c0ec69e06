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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO as ROOT } from '../helpers/repo.js';

const MODEL = join(ROOT, 'assets/models/blazeface-back/model.onnx');
const IMAGE = join(ROOT, 'assets/images/faces/sample1.jpg');
const VIDEO = join(ROOT, 'assets/video/vtest.avi');

test('release tarball: checksum, detect from the unpacked bundle, install/upgrade/uninstall under --root', { timeout: 180_000 }, (t) => {
  if (!existsSync(MODEL) || !existsSync(IMAGE) || !existsSync(VIDEO)) {
    t.skip('assets missing: run scripts/setup.sh for the BlazeFace model, sample faces and vtest.avi');
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

    // The commands the service and the operator run: check-config, and run (its ExecStart), from the
    // tarball. pino's transport code loads thread-stream with the log module; it was not shipped.
    const cfgFile = join(dir, 'agent.json');
    writeFileSync(cfgFile, JSON.stringify({
      deviceId: 'bundle-01', stateDir: join(dir, 'state'), detector: { model: MODEL },
      cameras: [{ source: { kind: 'file', path: VIDEO, id: 'cam' } }],
    }));
    const env = { PATH: process.env.PATH, HOME: dir };
    const check = spawnSync(join(pkg, 'bin/edge-agent'), ['check-config', cfgFile], { cwd: unpacked, encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(check.status, 0, check.stderr);
    const agentRun = spawnSync(join(pkg, 'bin/edge-agent'), ['run', '--config', cfgFile, '--frames', '3', '--json'], { cwd: unpacked, encoding: 'utf8', env, timeout: 90_000 });
    assert.equal(agentRun.status, 0, agentRun.stderr);
    assert.match(agentRun.stdout, /"ok":true.*"framesIn":3,"processed":3/, agentRun.stdout);

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
    // The CLI on PATH is a symlink into the release; the wrapper finds its bundle through it.
    const linked = join(dir, 'bin-link');
    mkdirSync(linked);
    symlinkSync(join(root, 'opt/edge-agent/current/bin/edge-agent'), join(linked, 'edge-agent'));
    const version = spawnSync(join(linked, 'edge-agent'), ['version'], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(version.status, 0, version.stderr);
    // An operator's drop-in (systemctl edit) is configuration: kept by a plain uninstall.
    const dropIn = join(root, 'etc/systemd/system/edge-agent.service.d/override.conf');
    mkdirSync(join(dropIn, '..'), { recursive: true });
    writeFileSync(dropIn, '[Service]\nWatchdogSec=60s\n');
    execFileSync('bash', [join(pkg, 'scripts/uninstall-agent.sh'), '--root', root], { stdio: 'ignore' });
    assert.ok(!existsSync(join(root, 'opt/edge-agent')) && !existsSync(join(root, 'etc/systemd/system/edge-agent.service')));
    assert.ok(existsSync(cfg), 'uninstall without --purge keeps the config');
    assert.ok(existsSync(dropIn), 'uninstall without --purge keeps unit drop-ins');
    process.stdout.write(`# bundle: packaged in ${packMs} ms, ${faces.length} faces from the unpacked tarball\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
