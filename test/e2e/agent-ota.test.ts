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
  const r = await runCli('edge-agent', ['run', '--config', join(dir, 'agent.json'), '--frames', '200', '--json'], { timeoutMs: 280_000 });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(summary.processed, summary.framesIn, 'no frame dropped across the swap');
  assert.equal(summary.dropped.capture, 0);
  // The device reports the new version as committed (retained `reported`, stored by the server).
  const device = await waitFor('device reports 1.0.1', async () => {
    const d = await fleet!.api<{ reported?: { models?: Record<string, unknown> } }>('GET', `/api/devices/${dev.id}`);
    return JSON.stringify(d.body.reported ?? {}).includes('1.0.1') ? d.body : undefined;
  }, 30_000);
  console.log(`frames ${summary.framesIn} in, ${summary.processed} processed; reported ${JSON.stringify(device.reported?.models)}`);
  assert.ok(existsSync(join(dir, 'state')), 'the agent keeps its versions under stateDir');
});
