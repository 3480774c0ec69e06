/**
 * An alert the outbox cannot take must not stop the agent: it threw into the pipeline, which aborted
 * every camera (a disk full, or an id longer than the alert protocol allows). And the config refuses
 * the ids the alert protocol would refuse, up front.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { FleetAttachment } from '../../agent/src/pipeline/fleet-attachment.js';
import type { AgentLink } from '../../agent/src/link/agent-link.js';
import type { AlertEvent } from '../../agent/src/rules/events.js';
import type { Frame } from '../../agent/src/types.js';

const minimal = { detector: { model: 'm.onnx' }, cameras: [{ source: { kind: 'file', path: 'v.avi', id: 'cam' } }] };

test('an alert the outbox refuses is logged and counted, not thrown into the pipeline', async () => {
  const config = agentConfigValidator.parse({ ...minimal, link: { url: 'mqtt://127.0.0.1:1' } }, 'config');
  const att = new FleetAttachment({ config, secret: 'x' });
  const queued: string[] = [];
  let full = true;
  att.link = {
    publishAlert: (a: { id: string }) => { if (full) throw new Error('database or disk is full'); queued.push(a.id); return a.id; },
    status: () => ({ inboundDropped: { 'desired:oversized': 1 }, telemetryDroppedOffline: 0, telemetryRefused: 0, resends: 0, outbox: { pending: 0, droppedFull: 0 } }),
  } as unknown as AgentLink;
  const frame: Frame = { width: 4, height: 4, data: new Uint8Array(48), index: 7, ptsNs: 0, capturedAtNs: 0, sourceId: 'cam' };
  const alert = (id: string): AlertEvent => ({
    id, kind: 'zone-enter', timeMs: Date.now(), ptsNs: 0, frameIndex: 7, cameraId: 'cam', ruleId: 'door', trackId: 1,
    classId: 0, label: 'person', score: 0.9, box: { x: 0, y: 0, w: 2, h: 2 }, zone: 'door',
  });
  await att.publishAlert(alert('a1'), frame);
  assert.equal(att.failedAlerts, 1);
  full = false;
  await att.publishAlert(alert('a2'), frame);
  assert.deepEqual(queued, ['a2'], 'the next alert goes through');
  assert.equal(att.withheldSnapshots, 2, 'no privacy stage started: snapshots withheld, fail closed');
  // Both counts reach the agent's Prometheus endpoint (they were in memory only).
  const text = await att.telemetry.registry.metrics();
  assert.match(text, /ef_alerts_not_queued_total\{device="[^"]*"\} 1\n/);
  assert.match(text, /ef_snapshots_withheld_total\{device="[^"]*"\} 2\n/);
  assert.match(text, /ef_link_inbound_dropped_total\{reason="desired:oversized",device="[^"]*"\} 1\n/);
});

test('camera, rule and device ids longer or other than the alert protocol allows are config errors', () => {
  const long = 'x'.repeat(65);
  const bad: Array<[string, unknown]> = [
    ['/cameras/0/source/id', { ...minimal, cameras: [{ source: { kind: 'file', path: 'v.avi', id: long } }] }],
    ['/cameras/0/rules/rules/0/id', { ...minimal, cameras: [{ source: { kind: 'file', path: 'v.avi' }, rules: { rules: [{ type: 'line', id: long, from: { x: 0, y: 0 }, to: { x: 1, y: 1 } }] } }] }],
    ['/deviceId', { ...minimal, deviceId: 'cam.lobby.01' }],
    ['/deviceId', { ...minimal, deviceId: long }],
  ];
  for (const [path, cfg] of bad) {
    const r = agentConfigValidator.check(cfg);
    assert.ok(!r.ok && r.issues.some((i) => i.path === path), `${path}: ${JSON.stringify(r.ok ? 'accepted' : r.issues.slice(0, 3))}`);
  }
  assert.ok(agentConfigValidator.check({ ...minimal, deviceId: 'cam-lobby_01' }).ok);
});

test('the privacy detector gets every vehicle the detector saw, not only confirmed tracks of the configured labels', async () => {
  // The tracker confirms a track on its second detection and above newTrackScore (0.5), and
  // detector.labels may leave "car" out: a car at 0.43 (the sample CenterNet on licenseplate_motion.jpg)
  // or a parked car seen once had no plate region, and its snapshot went out with the plate readable.
  const config = agentConfigValidator.parse({ ...minimal, link: { url: 'mqtt://127.0.0.1:1' } }, 'config');
  const att = new FleetAttachment({ config, secret: 'x' });
  const seen: Array<[string, string[]]> = [];
  att.privacy.observe = async (frame, dets) => { seen.push([frame.sourceId, dets.map((d) => `${d.label}@${d.score}`)]); return true; };
  const sinks = att.sinks();
  const frame = (cam: string, index: number): Frame => ({ width: 4, height: 4, data: new Uint8Array(48), index, ptsNs: index * 40e6, capturedAtNs: 0, sourceId: cam });
  const car = { classId: 2, label: 'car', score: 0.43, box: { x: 0, y: 0, w: 2, h: 2 } };
  const person = { trackId: 1, classId: 0, label: 'person', score: 0.9, box: { x: 1, y: 1, w: 1, h: 2 }, state: 'confirmed' };
  await sinks.onFrame!({ cameraId: 'a', frame: frame('a', 0), detections: [car], tracks: [], alerts: [] });
  await sinks.onFrame!({ cameraId: 'a', frame: frame('a', 1), detections: undefined, tracks: [person] as never, alerts: [] });
  await sinks.onFrame!({ cameraId: 'b', frame: frame('b', 1), detections: undefined, tracks: [], alerts: [] });
  assert.deepEqual(seen, [
    ['a', ['car@0.43']],
    ['a', ['person@0.9', 'car@0.43']], // between detections: the camera's last detections still count
    ['b', []], // and never another camera's
  ]);
});

test('telemetry counts what the pipeline did: frames in and dropped by capture, stage latencies, the model', async () => {
  // Only processed frames were counted: the fleet saw frames in 0, no drops, no stages, no models.
  const config = agentConfigValidator.parse({ ...minimal, detector: { model: '/models/coco-centernet/model.onnx' } }, 'config');
  const att = new FleetAttachment({ config });
  let cams = [{ cameraId: 'a', status: 'up' as const, framesIn: 10, processed: 8, detected: 3, dropped: { capture: 2 }, restarts: 0, alerts: 0 }];
  const { onStage } = att.telemetryFor(() => ({ cameraStats: () => cams }));
  for (const ms of [5, 7, 9]) onStage('infer', ms);
  const s1 = await att.telemetry.snapshot();
  assert.equal(s1.frames.in, 10);
  assert.deepEqual(s1.frames.dropped, { capture: 2 });
  assert.equal(s1.stages.infer?.count, 3);
  assert.deepEqual(s1.models, { detector: 'coco-centernet' });
  // Cumulative totals: only what is new is counted again.
  cams = [{ ...cams[0], framesIn: 15, dropped: { capture: 2 } }, { cameraId: 'b', status: 'up' as const, framesIn: 4, processed: 4, detected: 1, dropped: { capture: 1 }, restarts: 0, alerts: 0 }];
  const s2 = await att.telemetry.snapshot();
  assert.equal(s2.frames.in, 19);
  assert.deepEqual(s2.frames.dropped, { capture: 3 });
  assert.match(await att.telemetry.registry.metrics(), /ef_frames_in_total\{[^}]*\} 19/);
});

// The state carried only the agent version and the model's directory name: the dashboard's Platform
// field and board filter were always empty, and an OTA-installed version never showed in the state.
test('the device state says the platform, the board preset and the running model version', async () => {
  const { agentIdentity } = await import('../../agent/src/pipeline/fleet-attachment.js');
  const { decodePayload } = await import('../../agent/src/protocol/index.js');
  const config = agentConfigValidator.parse({ ...minimal, detector: { model: 'models/factory/model.onnx' }, board: 'jetson-orin' }, 'config');
  const ota = { running: undefined as string | undefined };
  const id = agentIdentity(config, () => ota.running);
  const state = () => JSON.stringify({ v: 1, online: true, ts: Date.now(), ...id });
  const before = decodePayload('state', state());
  assert.ok(before.ok, JSON.stringify(before));
  assert.deepEqual((before.value as { platform: unknown }).platform, { os: process.platform, arch: process.arch, node: process.version, board: 'jetson-orin' });
  assert.deepEqual((before.value as { models: unknown }).models, { detector: 'factory' });
  ota.running = '2.1.0';
  assert.deepEqual((JSON.parse(state()) as { models: unknown }).models, { detector: '2.1.0' });
});
