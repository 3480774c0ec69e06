/**
 * A camera's outage, its recovery and a changed resolution were visible only in the journal:
 * telemetry had frame totals for all cameras together. Each camera now reports its state, restarts,
 * last error and picture size; its return is logged with its size, and a changed size is warned about
 * with the rules that no longer fit the picture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { CameraPipeline, type CameraStats } from '../../agent/src/pipeline/camera-pipeline.js';
import { FleetAttachment } from '../../agent/src/pipeline/fleet-attachment.js';
import type { FrameSourceStats } from '../../agent/src/capture/gst-source.js';
import { decodePayload, TELEMETRY_MAX_CAMERAS } from '../../agent/src/protocol/index.js';
import type { Frame } from '../../agent/src/types.js';

const config = agentConfigValidator.parse({
  detector: { model: '/models/coco-centernet/model.onnx' },
  cameras: [{
    source: { kind: 'rtsp', url: 'rtsp://10.0.0.21/s', id: 'door' },
    rules: { rules: [
      { type: 'zone', id: 'steps', polygon: [{ x: 10, y: 10 }, { x: 300, y: 10 }, { x: 300, y: 230 }, { x: 10, y: 230 }] },
      { type: 'zone', id: 'porch', polygon: [{ x: 400, y: 300 }, { x: 630, y: 300 }, { x: 630, y: 350 }] },
    ] },
  }],
  schedule: { mode: 'fixed', interval: 1, motion: { enabled: false } },
}, 'test config');

const detector = { detectTimed: () => Promise.resolve({ detections: [], timings: { preprocessMs: 0, inferMs: 0, decodeMs: 0 } }) };

function logCapture() {
  const lines: Array<{ level: number; msg: string; rule?: string }> = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  return { log: pino({ level: 'info' }, sink), lines };
}

test('a camera reports starting, up, reconnecting and up again, with its size; its return and new size are logged', async () => {
  const { log, lines } = logCapture();
  const stats: FrameSourceStats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  const seen: Array<Pick<CameraStats, 'status' | 'width' | 'height' | 'lastError'>> = [];
  const look = () => { const s = pipeline.stats(); seen.push({ status: s.status, width: s.width, height: s.height, lastError: s.lastError }); };
  let index = 0;
  const mk = (width: number, height: number, segment: number, atS: number): Frame => {
    stats.framesIn++;
    return { width, height, data: new Uint8Array(width * height * 3), index: index++, ptsNs: atS * 1e9, capturedAtNs: atS * 1e9, sourceId: 'door', segment };
  };
  const pipeline: CameraPipeline = new CameraPipeline({
    camera: config.cameras[0], detector, schedule: config.schedule, tracker: config.tracker, log,
    source: {
      stats,
      async *frames() {
        look(); // before the first frame
        yield mk(320, 240, 0, 0);
        yield mk(320, 240, 0, 0.1);
        look();
        // The camera drops; the source restarts it and comes back with a bigger picture 30 s later.
        stats.errors++; stats.restarts++; stats.lastError = 'Could not read from resource (rtsp://admin:pw@10.0.0.21/s)';
        look();
        yield mk(640, 360, 1, 30.1);
        yield mk(640, 360, 1, 30.2);
        look();
      },
    },
  });
  await pipeline.run();
  assert.deepEqual(seen.map((s) => s.status), ['starting', 'up', 'reconnecting', 'up']);
  assert.deepEqual(seen.slice(1).map((s) => [s.width, s.height]), [[320, 240], [320, 240], [640, 360]]);
  assert.equal(seen[2].lastError, 'Could not read from resource (rtsp://***@10.0.0.21/s)', 'no credentials');
  assert.equal(pipeline.stats().status, 'ended');

  const msgs = lines.map((l) => `${l.level} ${l.msg}`);
  assert.ok(msgs.includes('40 rule porch of camera door lies wholly outside its 320×240 picture: it cannot fire'), msgs.join('\n'));
  const back = lines.filter((l) => l.msg.startsWith('camera door back'));
  assert.deepEqual(back.map((l) => [l.level, l.msg, (l as { offlineMs?: number }).offlineMs]), [[30, 'camera door back: 640×360', 30_000]]);
  assert.ok(msgs.some((m) => m.startsWith('40 camera door now delivers 640×360 pictures, not 320×240')), msgs.join('\n'));
  // At 640×360 the porch zone is inside the picture and steps is too: no rule lies outside it.
  assert.equal(lines.filter((l) => l.rule && l.msg.includes('640×360')).length, 0);
});

test('a smaller picture after a reconnect names the rules that now reach outside it', async () => {
  const { log, lines } = logCapture();
  const stats: FrameSourceStats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  const frames: Frame[] = [
    { width: 640, height: 360, data: new Uint8Array(640 * 360 * 3), index: 0, ptsNs: 0, capturedAtNs: 0, sourceId: 'door', segment: 0 },
    { width: 160, height: 120, data: new Uint8Array(160 * 120 * 3), index: 1, ptsNs: 1e9, capturedAtNs: 1e9, sourceId: 'door', segment: 1 },
  ];
  const p = new CameraPipeline({ camera: config.cameras[0], detector, schedule: config.schedule, tracker: config.tracker, log, source: { stats, async *frames() { yield* frames; } } });
  await p.run();
  const rules = lines.filter((l) => l.rule).map((l) => l.msg);
  assert.deepEqual(rules, [
    'rule steps of camera door lies partly outside its 160×120 picture: nothing is seen in the part outside',
    'rule porch of camera door lies wholly outside its 160×120 picture: it cannot fire',
  ]);
});

function cam(id: string, status: CameraStats['status'], extra: Partial<CameraStats> = {}): CameraStats {
  return { cameraId: id, status, framesIn: 10, processed: 10, detected: 10, dropped: { capture: 0 }, restarts: 0, alerts: 0, ...extra };
}

test('telemetry lists each camera, and the message still matches the protocol', async () => {
  const att = new FleetAttachment({ config });
  const cams = [
    cam('lobby', 'up', { width: 1280, height: 720 }),
    cam('gate', 'failed', { restarts: 2, lastError: `Camera source "gate" failed: ${'x'.repeat(300)}` }),
    cam('yard', 'reconnecting', { restarts: 1, width: 640, height: 360, lastError: 'Could not read from resource.' }),
  ];
  att.telemetryFor(() => ({ cameraStats: () => cams }));
  const t = await att.telemetry.snapshot();
  const decoded = decodePayload('telemetry', JSON.stringify(t));
  assert.ok(decoded.ok, JSON.stringify(decoded));
  assert.deepEqual(t.cameras?.map((c) => [c.id, c.status, c.restarts, c.width, c.height]), [
    ['lobby', 'up', 0, 1280, 720], ['gate', 'failed', 2, undefined, undefined], ['yard', 'reconnecting', 1, 640, 360],
  ]);
  assert.equal(t.cameras?.[1].lastError?.length, 200, 'a long reason is cut to the protocol\'s 200 characters');
  const metrics = await att.telemetry.registry.metrics();
  assert.match(metrics, /ef_camera_up\{camera="lobby"[^}]*\} 1/);
  assert.match(metrics, /ef_camera_up\{camera="gate"[^}]*\} 0/);
  assert.match(metrics, /ef_camera_restarts_total\{camera="gate"[^}]*\} 2/);
});

test('telemetry lists at most 32 cameras, those not up first', async () => {
  const att = new FleetAttachment({ config });
  const cams = Array.from({ length: 40 }, (_, i) => cam(`cam${i}`, i === 35 ? 'failed' : 'up'));
  att.telemetryFor(() => ({ cameraStats: () => cams }));
  const t = await att.telemetry.snapshot();
  assert.equal(t.cameras?.length, TELEMETRY_MAX_CAMERAS);
  assert.deepEqual(t.cameras?.[0], { id: 'cam35', status: 'failed', framesIn: 10, restarts: 0 });
  assert.ok(decodePayload('telemetry', JSON.stringify(t)).ok);
});
