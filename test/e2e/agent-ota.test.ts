/**
 * An over-the-air model update as an operator sees it: the fleet server publishes a signed version
 * and sets the device's desired state; `edge-agent run` (real pipeline on vtest.avi) downloads it over
 * MQTT, verifies it against the pinned key, swaps it in between two frames, passes the health window
 * and reports it — without dropping a frame.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

const MODEL = resolve('assets/models/coco-centernet/model.onnx');
const need = [MODEL, 'assets/video/vtest.avi'].filter((p) => !existsSync(p));
let fleet: TestFleet | undefined;
const dir = mkdtempSync(join(tmpdir(), 'ef-e2e-ota-'));
after(async () => { await fleet?.stop(); rmSync(dir, { recursive: true, force: true }); });

test('edge-agent run installs a published model mid-stream and reports it, dropping no frame', { skip: need.length ? `needs ${need.join(', ')} (run ./scripts/setup.sh)` : false, timeout: 300_000 }, async () => {
  fleet = await startFleet({ broker: 'aedes' });
  const dev = fleet.addDevice('ota-e2e-01');
  writeFileSync(join(dir, 'secret'), dev.secret, { mode: 0o600 });
  writeFileSync(join(dir, 'fleet.pub'), fleet.server.ota.key.publicKeyPem);
  // Version 1.0.1: the same detector republished (what matters here is the path it takes).
  const v2 = join(dir, 'v2');
  mkdirSync(v2);
  copyFileSync(MODEL, join(v2, 'model.onnx'));
  writeFileSync(join(v2, 'model.meta.json'), JSON.stringify({ ...JSON.parse(readFileSync(MODEL.replace(/\.onnx$/, '.meta.json'), 'utf8')), version: '1.0.1' }));
  const published = (await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir: v2, version: '1.0.1' })).record;
  fleet.server.ota.desired.set(dev.id, 'detector', { version: '1.0.1', manifest: published.manifest, signature: published.signature, healthWindowMs: 1000 });

  writeFileSync(join(dir, 'agent.json'), JSON.stringify({
    deviceId: dev.id,
    stateDir: join(dir, 'state'),
    detector: { model: MODEL, labels: ['person'] },
    cameras: [{ source: { kind: 'file', path: resolve('assets/video/vtest.avi'), id: 'walkway' } }],
    schedule: { interval: 1, motion: { enabled: false } },
    link: { url: fleet.mqttUrl, secretFile: join(dir, 'secret') },
    ota: { publicKeyFile: join(dir, 'fleet.pub'), factoryVersion: '1.0.0' },
    privacy: { enabled: false },
  }));
  // The agent runs until the device has reported 1.0.1 committed (after its health window on the new
  // model), a second more on it, then SIGTERM. A fixed --frames 200 (CenterNet on every frame) ran most
  // of its frames after the commit.
  let ended = false;
  const reported = waitFor('device reports 1.0.1', async () => {
    if (ended) throw new Error('edge-agent run ended before the device reported 1.0.1');
    // (A probe for "1.0.1" anywhere in `reported` was met by the download's progress: ota.version.)
    const d = await fleet!.api<{ reported?: { models?: Record<string, unknown>; ota?: { phase?: string } } }>('GET', `/api/devices/${dev.id}`);
    return d.body.reported?.models?.detector === '1.0.1' && d.body.reported.ota?.phase === 'committed' ? d.body : undefined;
  }, 240_000, 100);
  reported.catch(() => { /* awaited below, after the run */ });
  const ndjson = join(dir, 'frames.ndjson');
  const r = await runCli('edge-agent', ['run', '--config', join(dir, 'agent.json'), '--ndjson', ndjson, '--json'], { timeoutMs: 280_000, terminate: reported.then(() => new Promise((res) => setTimeout(res, 1000))) })
    .finally(() => { ended = true; });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const device = await reported;
  const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.ok(summary.framesIn < 795, `stopped mid-file after the commit: ${summary.framesIn} of 795 frames`);
  assert.equal(summary.dropped.capture, 0);
  // Every frame from the first to the last processed went through the detector (interval 1), the swap
  // included; only the frame in flight when SIGTERM came may be left.
  const frames = readFileSync(ndjson, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type?: string; frame: number; detected: boolean }).filter((l) => l.type !== 'summary');
  assert.deepEqual(frames.map((f) => f.frame), [...Array(summary.processed).keys()], 'no frame skipped across the swap');
  assert.ok(frames.every((f) => f.detected), 'each frame inferred');
  assert.ok(summary.framesIn - summary.processed <= 1, `${summary.framesIn} frames in, ${summary.processed} processed`);
  console.log(`frames ${summary.framesIn} in, ${summary.processed} processed; reported ${JSON.stringify(device.reported)}`);
  assert.ok(existsSync(join(dir, 'state')), 'the agent keeps its versions under stateDir');
});
