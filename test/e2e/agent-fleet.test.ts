/**
 * The whole path an alert takes: edge-agent run (real GStreamer, real detector, tracker, rules,
 * privacy gate, outbox) → MQTT (embedded aedes) → fleet server → SQLite → HTTP API, with the
 * redacted snapshot alongside.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';

const need = ['assets/models/coco-centernet/model.onnx', 'assets/models/blazeface-back/model.onnx', 'assets/video/vtest.avi'].filter((p) => !existsSync(p));
const FRAMES = 60;
let fleet: TestFleet | undefined;
const dir = mkdtempSync(join(tmpdir(), 'ef-e2e-'));
after(async () => { await fleet?.stop(); rmSync(dir, { recursive: true, force: true }); });

test('alerts from vtest.avi reach the fleet server once each, with redacted snapshots', { skip: need.length ? `needs ${need.join(', ')} (run ./scripts/setup.sh)` : false }, async () => {
  fleet = await startFleet({ broker: 'aedes' });
  const dev = fleet.addDevice('walkway-01');
  writeFileSync(join(dir, 'secret'), dev.secret, { mode: 0o600 });
  const example = JSON.parse(readFileSync('configs/agent.example.json', 'utf8'));
  const config = {
    ...example,
    deviceId: dev.id,
    stateDir: join(dir, 'state'),
    detector: { ...example.detector, model: resolve('assets/models/coco-centernet/model.onnx') },
    cameras: [{ ...example.cameras[0], source: { ...example.cameras[0].source, path: resolve('assets/video/vtest.avi') } }],
    link: { url: fleet.mqttUrl, secretFile: join(dir, 'secret') },
    privacy: { faces: { modelPath: resolve('assets/models/blazeface-back/model.onnx') }, plates: { textModelPath: resolve('assets/models/ppocr-det/model.onnx') } },
  };
  delete config.board;
  writeFileSync(join(dir, 'agent.json'), JSON.stringify(config));
  // 60 frames (6 s of video): at interval 3 people enter the walkway zone and cross the line several
  // times in them (6 alerts of both rules here), each with a snapshot; the privacy gate's face and
  // plate passes on every frame are most of the run's time, so frames past that only repeated it.
  const r = await runCli('edge-agent', ['run', '--config', join(dir, 'agent.json'), '--frames', String(FRAMES), '--json'], { timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.ok(summary.alerts > 0, `people walk into the walkway zone within ${FRAMES} frames`);
  // The agent flushed its outbox before exiting; the server stores each alert exactly once.
  const page = await waitFor('all alerts stored', async () => {
    const res = await fleet!.api<{ items: Array<{ id: string; rule: string; snapshot?: unknown; hasSnapshot?: boolean }> }>('GET', `/api/alerts?deviceId=${dev.id}&limit=500`);
    return res.body.items.length >= summary.alerts ? res.body : undefined;
  }, 30_000);
  assert.equal(page.items.length, summary.alerts);
  assert.equal(new Set(page.items.map((a) => a.id)).size, summary.alerts);
  let snapshots = 0;
  for (const a of page.items) {
    const s = await fleet.api<unknown>('GET', `/api/alerts/${dev.id}/${a.id}/snapshot`);
    if (s.status === 200) snapshots++;
  }
  console.log(`alerts ${summary.alerts}, with snapshots ${snapshots}, frames ${summary.processed}`);
  assert.ok(snapshots > 0, 'covered frames release a redacted snapshot with the alert');
});
