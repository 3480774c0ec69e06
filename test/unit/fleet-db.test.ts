import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { TelemetryStore } from '../../fleet-server/src/db/telemetry.js';
import { AlertStore } from '../../fleet-server/src/db/alerts.js';
import { OperatorStore } from '../../fleet-server/src/db/operators.js';
import { AckPublisher } from '../../fleet-server/src/ingest/acks.js';
import { LoginThrottle } from '../../fleet-server/src/api/login-throttle.js';
import { decodePayload } from '../../agent/src/protocol/index.js';
import { alertFixture } from '../helpers/fleet.js';
import type { TelemetryPayload } from '../../agent/src/protocol/index.js';

function setup() {
  let nowMs = 1_000_000;
  const clock = { now: () => nowMs, advance: (ms: number) => { nowMs += ms; } };
  const db = openDatabase(':memory:');
  return { db, clock, devices: new DeviceStore(db, clock.now), telemetry: new TelemetryStore(db, clock.now), alerts: new AlertStore(db, clock.now), operators: new OperatorStore(db, clock.now) };
}

test('registry: secret shown once, stored hashed, verified; state and liveness', async () => {
  const s = setup();
  const { secret } = s.devices.add('cam-1');
  assert.equal(await s.devices.verify('cam-1', secret), true);
  assert.equal(await s.devices.verify('cam-1', `${secret}x`), false);
  assert.equal(await s.devices.verify('nobody', secret), false);
  assert.throws(() => s.devices.add('cam-1'), /already exists/);
  const rotated = s.devices.add('cam-1', { rotate: true }).secret;
  assert.equal(await s.devices.verify('cam-1', secret), false);
  assert.equal(await s.devices.verify('cam-1', rotated), true);
  assert.ok(!JSON.stringify(s.db.prepare('SELECT * FROM devices').all()).includes(rotated));
  s.devices.applyState('cam-1', { v: 1, online: true, ts: 1, agentVersion: '1.0', platform: { os: 'linux', arch: 'arm64', board: 'jetson-orin' } });
  const first = s.devices.get('cam-1')!;
  s.clock.advance(5000);
  s.devices.applyState('cam-1', { v: 1, online: false, ts: 2 });
  const d = s.devices.get('cam-1')!;
  assert.equal(d.online, false);
  assert.equal(d.platform?.board, 'jetson-orin', 'the will carries no platform; the last known one stays');
  assert.equal(d.firstSeenMs, first.firstSeenMs);
  assert.equal(d.lastSeenMs, first.lastSeenMs! + 5000);
  assert.equal(s.devices.markAllOffline(), 0);
});

test('telemetry retention prunes by age', () => {
  const s = setup();
  s.devices.add('cam-1');
  const tel = { ts: 1 } as unknown as TelemetryPayload;
  s.telemetry.insert('cam-1', tel);
  s.clock.advance(3_600_000);
  s.telemetry.insert('cam-1', tel);
  assert.equal(s.telemetry.prune(1_800_000), 1);
  assert.equal(s.telemetry.count('cam-1'), 1);
});

test('alerts: stored once per (device, id), paged newest first, snapshot kept apart', () => {
  const s = setup();
  const a = decodePayload('alert', JSON.stringify({ ...alertFixture('x1'), snapshot: { contentType: 'image/jpeg', redacted: true, width: 2, height: 2, dataBase64: Buffer.from('jpeg').toString('base64') } }));
  assert.ok(a.ok);
  assert.equal(s.alerts.insert('cam-1', a.value), true);
  assert.equal(s.alerts.insert('cam-1', a.value), false);
  assert.equal(s.alerts.insert('cam-2', a.value), true, 'another device may use the same id');
  for (let i = 2; i <= 5; i++) s.alerts.insert('cam-1', { ...alertFixture(`x${i}`), seq: i });
  const p1 = s.alerts.page({ deviceId: 'cam-1', limit: 3 });
  assert.deepEqual(p1.items.map((r) => r.id), ['x5', 'x4', 'x3']);
  const p2 = s.alerts.page({ deviceId: 'cam-1', limit: 3, beforeSeq: p1.nextBeforeSeq! });
  assert.deepEqual(p2.items.map((r) => r.id), ['x2', 'x1']);
  assert.equal(p2.nextBeforeSeq, null);
  assert.deepEqual(p2.items[1].snapshot, { contentType: 'image/jpeg', bytes: 4 });
  assert.equal(s.alerts.snapshot('cam-1', 'x1')?.data.toString(), 'jpeg');
});

test('alert retention: snapshots are dropped first, the alerts later; newer ones stay', () => {
  // Kept forever, one device's alerts with snapshots filled the server's disk.
  const s = setup();
  const withSnap = (id: string) => {
    const a = decodePayload('alert', JSON.stringify({ ...alertFixture(id), snapshot: { contentType: 'image/jpeg', redacted: true, width: 2, height: 2, dataBase64: Buffer.from('jpeg').toString('base64') } }));
    assert.ok(a.ok);
    s.alerts.insert('cam-1', a.value);
  };
  withSnap('old');
  s.clock.advance(5 * 3600_000);
  withSnap('mid');
  s.clock.advance(5 * 3600_000);
  withSnap('new');
  // Alerts after 8 h, snapshots after 2 h: 'old' (10 h) goes, 'mid' (5 h) loses its snapshot, 'new' keeps all.
  assert.deepEqual(s.alerts.prune(8 * 3600_000, 2 * 3600_000), { alerts: 1, snapshots: 1 });
  assert.deepEqual(s.alerts.page().items.map((r) => [r.id, r.snapshot !== null]), [['new', true], ['mid', false]]);
  assert.equal(s.alerts.snapshot('cam-1', 'mid'), undefined);
  assert.equal(s.alerts.snapshot('cam-1', 'new')?.data.toString(), 'jpeg');
  assert.deepEqual(s.alerts.prune(8 * 3600_000, 2 * 3600_000), { alerts: 0, snapshots: 0 });
});

test('operators: scrypt password, expiring bearer tokens', async () => {
  const s = setup();
  s.operators.setPassword('admin', 'correct horse');
  assert.equal(await s.operators.login('admin', 'wrong', 1000), undefined);
  assert.equal(await s.operators.login('nobody', 'correct horse', 1000), undefined);
  const t = (await s.operators.login('admin', 'correct horse', 1000))!;
  assert.equal(s.operators.authenticate(t.token), 'admin');
  s.clock.advance(1001);
  assert.equal(s.operators.authenticate(t.token), undefined);
});

test('failed logins are limited per client address, which a success resets', () => {
  let now = 0;
  const th = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 3; i++) { assert.equal(th.retryAfterMs('10.0.0.9'), 0); th.failed('10.0.0.9'); now += 1000; }
  assert.equal(th.retryAfterMs('10.0.0.9'), 57_000, 'until the oldest failure leaves the window');
  assert.equal(th.retryAfterMs('10.0.0.7'), 0, 'another address (the operator) is not locked out');
  now = 60_001;
  assert.equal(th.retryAfterMs('10.0.0.9'), 0);
  th.failed('10.0.0.7'); th.failed('10.0.0.7'); th.succeeded('10.0.0.7'); th.failed('10.0.0.7');
  assert.equal(th.retryAfterMs('10.0.0.7'), 0);
});

test('receipts are batched per device and valid ack payloads', async () => {
  const sent: { topic: string; payload: Buffer }[] = [];
  const acks = new AckPublisher((topic, payload) => sent.push({ topic, payload }), 5);
  acks.add('cam-1', 'a'); acks.add('cam-1', 'b'); acks.add('cam-2', 'c');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(sent.map((m) => m.topic), ['ef/v1/dev/cam-1/ack', 'ef/v1/dev/cam-2/ack']);
  const d = decodePayload('ack', sent[0].payload);
  assert.ok(d.ok);
  assert.deepEqual(d.value.ids, ['a', 'b']);
  acks.stop();
});

test('alert retention works in bounded batches: a backlog is pruned over several calls', () => {
  const s = setup();
  for (let i = 0; i < 1200; i++) s.alerts.insert('cam-1', { ...alertFixture(`b${i}`), seq: i });
  s.clock.advance(10 * 3600_000);
  assert.deepEqual(s.alerts.prune(3600_000, 3600_000, 1000), { alerts: 1000, snapshots: 0 });
  assert.deepEqual(s.alerts.prune(3600_000, 3600_000, 1000), { alerts: 200, snapshots: 0 });
  assert.equal(s.alerts.count('cam-1'), 0);
});

// A resent alert (its receipt was lost) was announced again on /api/events each time; empty alert and
// telemetry payloads were returned from without being counted.
test('ingest: a resent alert is receipted each time but announced once; empty alert and telemetry payloads are counted as dropped', async () => {
  const { Ingest } = await import('../../fleet-server/src/ingest/ingest.js');
  const { Registry } = await import('prom-client');
  const s = setup();
  s.devices.add('cam-01');
  const announced: string[] = [];
  const receipts: string[] = [];
  const ingest = new Ingest({
    devices: s.devices, telemetry: s.telemetry, alerts: s.alerts, registry: new Registry(),
    onStored: (kind, _id, v) => { if (kind === 'alert') announced.push((v as { id: string }).id); },
    onAlertReceipt: (_d, id) => receipts.push(id),
  });
  const alert = Buffer.from(JSON.stringify(alertFixture('same-1')));
  for (let i = 0; i < 3; i++) ingest.handle('ef/v1/dev/cam-01/alert', alert);
  assert.deepEqual(receipts, ['same-1', 'same-1', 'same-1']);
  assert.deepEqual(announced, ['same-1']);
  ingest.handle('ef/v1/dev/cam-01/alert', Buffer.alloc(0));
  ingest.handle('ef/v1/dev/cam-01/telemetry', Buffer.alloc(0));
  ingest.handle('ef/v1/dev/cam-01/state', Buffer.alloc(0)); // clearing a retained state: not a bad message
  const st = ingest.getStats();
  assert.deepEqual(st.droppedBy, { 'alert:empty': 1, 'telemetry:empty': 1 });
  assert.equal(st.alertsDuplicate, 2);
});

test('alert pages filter by devices, rule, class and arrival time, newest first, on indexes, and continue with nextBeforeSeq', () => {
  const s = setup();
  s.devices.add('cam-01');
  s.devices.add('cam-02');
  s.alerts.insert('cam-01', alertFixture('a-door', { rule: 'door', class: 'person', ts: 1000 }));
  for (let i = 0; i < 5; i++) {
    if (i === 3) s.clock.advance(60_000);
    s.alerts.insert('cam-02', alertFixture(`b-${i}`, { rule: 'gate', class: i % 2 ? 'car' : 'person', ts: 2000 + i }));
  }
  const ids = (r: { items: { id: string }[] }) => r.items.map((a) => a.id);
  assert.deepEqual(ids(s.alerts.page({ deviceIds: ['cam-01'] })), ['a-door']);
  assert.deepEqual(ids(s.alerts.page({ deviceIds: [] })), []);
  assert.deepEqual(ids(s.alerts.page({ rule: 'gate', class: 'car' })), ['b-3', 'b-1']);
  assert.deepEqual(ids(s.alerts.page({ sinceReceivedMs: s.clock.now() - 1000 })), ['b-4', 'b-3']);
  assert.deepEqual(ids(s.alerts.page({ sinceReceivedMs: s.clock.now() + 1 })), []);
  // A filter that matches few alerts must not read every row's JSON (0.7–1.1 s over 1M alerts).
  const plan = (sql: string) => (s.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
  assert.match(plan("SELECT seq FROM alerts WHERE seq < 99 AND json_extract(payload_json, '$.rule') = 'door' ORDER BY seq DESC LIMIT 5"), /alerts_rule_seq/);
  assert.match(plan("SELECT seq FROM alerts WHERE seq < 99 AND json_extract(payload_json, '$.class') = 'car' ORDER BY seq DESC LIMIT 5"), /alerts_class_seq/);
  const first = s.alerts.page({ limit: 4 });
  assert.deepEqual(ids(first), ['b-4', 'b-3', 'b-2', 'b-1']);
  assert.deepEqual(ids(s.alerts.page({ limit: 4, beforeSeq: first.nextBeforeSeq! })), ['b-0', 'a-door']);
});
