/**
 * Agent link ↔ fleet server over a real broker on 127.0.0.1 (embedded aedes and Debian mosquitto):
 * protocol negotiation, registry (online, platform, versions), telemetry with drift, alerts with a
 * redacted snapshot through the outbox, the authenticated API and both Prometheus endpoints.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { join } from 'node:path';
import { alertFixture, startFleet, type BrokerKind } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { makeTestCerts } from '../helpers/certs.js';
import { waitFor } from '../helpers/wait.js';
import { Telemetry } from '../../agent/src/telemetry/telemetry.js';
import { MetricsServer } from '../../agent/src/telemetry/metrics-server.js';
import { AgentLink } from '../../agent/src/link/agent-link.js';
import type { DeviceRecord } from '../../fleet-server/src/db/devices.js';
import type { RgbImage } from '../../agent/src/types.js';

function flatFrame(level: number): RgbImage {
  const data = new Uint8Array(32 * 24 * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, level + (i % 7) * 3));
  return { width: 32, height: 24, data };
}

// Smallest valid JPEG is not needed: the server stores bytes as given; a tiny real JPEG header is enough.
const JPEG = Buffer.from('/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=', 'base64');

for (const kind of ['aedes', 'mosquitto', 'mosquitto-embedded'] as BrokerKind[]) {
  describe(`agent link over ${kind}`, { concurrency: false }, () => {
    test('registry, telemetry with drift, alert with snapshot, API auth, metrics', async (t) => {
      if (kind !== 'aedes' && !mosquittoAvailable()) return t.skip('mosquitto binary not installed (apt mosquitto)');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const dev = fleet.addDevice('cam-01');
      const link = fleet.agentLink(dev, { identity: { agentVersion: '0.1.0', platform: { os: 'linux', arch: 'x64', board: 'generic-x86' }, models: { detector: '1.0.0' } } });
      link.start();
      await link.waitConnected(10_000);
      // aedes 1.x refuses MQTT 5; the link falls back to 3.1.1. mosquitto speaks 5.
      assert.equal(link.status().protocolVersion, kind === 'aedes' ? 4 : 5);

      const online = await waitFor('device online in the registry', async () => {
        const r = await fleet.api<DeviceRecord>('GET', '/api/devices/cam-01');
        return r.body.online ? r.body : undefined;
      });
      assert.equal(online.platform?.board, 'generic-x86');
      assert.equal(online.models?.detector, '1.0.0');
      assert.ok(online.firstSeenMs !== null);

      // Telemetry with drift: steady baseline, then shifted brightness.
      const tel = new Telemetry({ drift: { baselineSize: 30, windowSize: 30, minSamples: 30 }, outboxStats: () => link.outbox.stats() });
      tel.start();
      t.after(() => tel.stop());
      for (let i = 0; i < 60; i++) tel.observeFrameStats(flatFrame(100 + (i % 10)));
      tel.recordStage('infer', 12);
      link.publishTelemetry(await tel.snapshot());
      await waitFor('steady telemetry stored', () => fleet.server.telemetry.count('cam-01') >= 1);
      assert.equal(fleet.server.devices.get('cam-01')?.driftFlagged, false);
      for (let i = 0; i < 30; i++) tel.observeFrameStats(flatFrame(180 + (i % 10)));
      const shifted = await tel.snapshot();
      assert.equal(shifted.drift.flagged, true);
      link.publishTelemetry(shifted);
      await waitFor('drift flag in the registry', () => fleet.server.devices.get('cam-01')?.driftFlagged === true);
      const series = await fleet.api<{ items: { payload: { drift: { psi: { brightness?: number } } } }[] }>('GET', '/api/devices/cam-01/telemetry?limit=5');
      assert.equal(series.body.items.length, 2);
      console.log(`${kind}: drift PSI brightness steady→shifted ${series.body.items[1].payload.drift.psi.brightness} → ${series.body.items[0].payload.drift.psi.brightness}`);

      // Alerts: three, one with a redacted snapshot; paged API, snapshot route.
      link.publishAlert(alertFixture('al-1'));
      link.publishAlert(alertFixture('al-2'));
      link.publishAlert({ ...alertFixture('al-3'), snapshot: { contentType: 'image/jpeg', redacted: true, width: 1, height: 1, dataBase64: JPEG.toString('base64') } });
      await waitFor('3 alerts stored', () => fleet.server.alerts.count('cam-01') === 3);
      await waitFor('outbox drained', () => link.outbox.stats().pending === 0);
      const p1 = await fleet.api<{ items: { id: string }[]; nextBeforeSeq: number }>('GET', '/api/alerts?limit=2');
      assert.deepEqual(p1.body.items.map((a) => a.id), ['al-3', 'al-2']);
      const p2 = await fleet.api<{ items: { id: string }[]; nextBeforeSeq: number | null }>('GET', `/api/alerts?limit=2&beforeSeq=${p1.body.nextBeforeSeq}`);
      assert.deepEqual(p2.body.items.map((a) => a.id), ['al-1']);
      assert.equal(p2.body.nextBeforeSeq, null);
      const snap = await fetch(`${fleet.httpUrl}/api/alerts/cam-01/al-3/snapshot`, { headers: { authorization: `Bearer ${await fleet.login()}` } });
      assert.equal(snap.headers.get('content-type'), 'image/jpeg');
      assert.deepEqual(Buffer.from(await snap.arrayBuffer()), JPEG);

      // Authentication on every data route.
      for (const path of ['/api/devices', '/api/alerts', '/api/devices/cam-01/telemetry', '/api/alerts/cam-01/al-3/snapshot', '/metrics']) {
        assert.equal((await fetch(`${fleet.httpUrl}${path}`)).status, 401, path);
      }
      assert.equal((await fetch(`${fleet.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"admin","password":"wrong-password"}' })).status, 401);

      // Prometheus: the agent's endpoint on localhost and the server's behind the token.
      const ms = new MetricsServer({ registry: tel.registry, port: 0 });
      await ms.start();
      t.after(() => ms.stop());
      const agentMetrics = await (await fetch(`http://127.0.0.1:${ms.port}/metrics`)).text();
      assert.match(agentMetrics, /ef_drift_flagged 1/);
      const serverMetrics = await fleet.api<string>('GET', '/metrics');
      assert.match(serverMetrics.body, /ef_alerts_total\{result="stored"\} 3/);

      // A clean stop publishes offline.
      await link.stop();
      await waitFor('device offline', () => fleet.server.devices.get('cam-01')?.online === false);
    });
  });
}

test('last will marks a device offline when its connection dies', async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-lwt');
  const will = { topic: 'ef/v1/dev/cam-lwt/state', payload: Buffer.from(JSON.stringify({ v: 1, online: false, ts: Date.now() })), qos: 1 as const, retain: true };
  const c = mqtt.connect(fleet.mqttUrl, { username: dev.id, password: dev.secret, protocolVersion: 4, reconnectPeriod: 0, will });
  await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
  c.publish('ef/v1/dev/cam-lwt/state', JSON.stringify({ v: 1, online: true, ts: Date.now() }), { qos: 1, retain: true });
  await waitFor('online', () => fleet.server.devices.get('cam-lwt')?.online === true);
  c.stream.destroy();
  await waitFor('offline from the will', () => fleet.server.devices.get('cam-lwt')?.online === false);
  c.end(true);
});

for (const kind of ['aedes', 'mosquitto-embedded'] as BrokerKind[]) test(`TLS with a pinned CA (${kind}): the right CA connects, another CA is refused`, async (t) => {
  if (kind !== 'aedes' && !mosquittoAvailable()) return t.skip('mosquitto binary not installed (apt mosquitto)');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'ef-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = makeTestCerts(dir, 'good');
  const other = makeTestCerts(dir, 'other');
  const fleet = await startFleet({ broker: kind, tls: { certPath: good.certPath, keyPath: good.keyPath } });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-tls');
  const ok = fleet.agentLink(dev, { url: fleet.mqttsUrl!, caPem: good.caPem });
  ok.start();
  await ok.waitConnected(10_000);
  ok.publishAlert(alertFixture('tls-1'));
  await waitFor('alert over TLS', () => fleet.server.alerts.count('cam-tls') === 1);
  await ok.stop();
  const bad = new AgentLink({ deviceId: dev.id, secret: dev.secret, url: fleet.mqttsUrl!, caPem: other.caPem, outbox: join(dir, 'bad-outbox.sqlite'), backoff: { initialMs: 100, maxMs: 200 } });
  bad.start();
  t.after(() => bad.stop());
  await assert.rejects(bad.waitConnected(1500), /Not connected/);
});

test('a broker that refuses the ack subscription is named in the link status and the log, not just warned about', async (t) => {
  // Without receipts every alert is resent at each timeout, forever; it used to be one warning line.
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const aedes = (fleet.server.broker as unknown as { aedes: { authorizeSubscribe: (c: unknown, sub: { topic: string }, done: (e: Error | null, s: unknown) => void) => void } }).aedes;
  const allow = aedes.authorizeSubscribe;
  // An ACL that leaves out the device's ack topic.
  aedes.authorizeSubscribe = (c, sub, done) => (sub.topic.endsWith('/ack') ? done(null, null) : allow(c, sub, done));
  const dev = fleet.addDevice('cam-noack');
  const link = fleet.agentLink(dev);
  link.start();
  await link.waitConnected();
  const status = await waitFor('refusal known', () => (link.status().refusedSubscriptions.length ? link.status() : undefined), 5000);
  assert.deepEqual(status.refusedSubscriptions, ['ef/v1/dev/cam-noack/ack']);
  assert.ok(link.status().connected, 'an ACL refusal is not a reason to reconnect in a loop');
});

/** A bare aedes broker on 127.0.0.1 (no fleet server: nothing sends receipts) and a temp dir. */
async function bareBroker(t: import('node:test').TestContext): Promise<{ url: string; dir: string; close: () => Promise<void> }> {
  const { Aedes } = await import('aedes');
  const { createServer } = await import('node:net');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= new Promise<void>((resolve) => { broker.close(() => server.close(() => resolve())); }));
  t.after(close);
  const dir = mkdtempSync(join(tmpdir(), 'ef-bare-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { url: `mqtt://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`, dir, close };
}

// The receipt timeout timed with the wall clock: an NTP step backwards held a lost alert back for as
// long as the step. A bare broker (no fleet server) never sends the receipt, so the link must resend.
test('the receipt timeout resends on time across a wall-clock step backwards', async (t) => {
  const { url, dir } = await bareBroker(t);
  const copies: string[] = [];
  const sub = await mqtt.connectAsync(url, { protocolVersion: 4 });
  t.after(() => sub.endAsync());
  sub.on('message', (_topic, payload) => copies.push((JSON.parse(payload.toString()) as { id: string }).id));
  await sub.subscribeAsync('ef/v1/dev/+/alert', { qos: 1 });
  let step = 0;
  const link = new AgentLink({ deviceId: 'cam-clock', secret: 'unused', url, outbox: join(dir, 'outbox.sqlite'), protocolVersion: 4,
    // 2 s, so that a stall of the loaded machine does not bring the resend before the count below
    // (with 600 ms, a stall over 400 ms did).
    ackTimeoutMs: 2000, now: () => Date.now() - step });
  link.start();
  t.after(() => link.stop());
  await link.waitConnected(10_000);
  link.publishAlert(alertFixture('clock-1'));
  await waitFor('first copy', () => copies.length >= 1 || undefined, 5000, 20);
  await new Promise((r) => setTimeout(r, 200)); // its PUBACK is in: the timeout has started
  assert.equal(copies.length, 1);
  step = 3_600_000; // NTP steps the clock back an hour
  await waitFor('a resend within a few timeouts of the step', () => copies.length >= 2 || undefined, 8000, 20);
  assert.deepEqual([...new Set(copies)], ['clock-1']);
});

// The server counts and drops telemetry that does not match the protocol: the device looked silent,
// and nothing on it said why.
test('telemetry that does not match the protocol is not sent, and is counted and logged on the device', async (t) => {
  const { url, dir } = await bareBroker(t);
  const link = new AgentLink({ deviceId: 'cam-tel', secret: 'unused', url, outbox: join(dir, 'outbox.sqlite'), protocolVersion: 4 });
  link.start();
  await link.waitConnected(10_000);
  const telemetry = new Telemetry({ intervalMs: 1000 });
  telemetry.start();
  const snap = await telemetry.snapshot();
  telemetry.stop();
  assert.equal(link.publishTelemetry(snap), true);
  const zones = Object.fromEntries(Array.from({ length: 40 }, (_v, i) => [`zone${i}`, 40]));
  assert.equal(link.publishTelemetry({ ...snap, temperatureC: zones }), false);
  assert.equal(link.status().telemetryRefused, 1);
  await link.stop();
});

// stop() waited for PUBACKs (its offline state, alerts in flight) from a broker that had gone: the
// agent's SIGTERM hung until systemd killed it.
test('stop() returns when the broker is gone, without waiting for acknowledgements that never come', async (t) => {
  const { url, dir, close } = await bareBroker(t);
  const link = new AgentLink({ deviceId: 'cam-stop', secret: 'unused', url, outbox: join(dir, 'outbox.sqlite'), protocolVersion: 4 });
  link.start();
  await link.waitConnected(10_000);
  await close();
  const t0 = Date.now();
  const deadline = setTimeout(() => undefined, 15_000); // keeps the loop alive: a hang shows as a timeout, not a cancelled test
  await Promise.race([link.stop(), new Promise((_, rej) => setTimeout(() => rej(new Error('stop() still waiting after 10 s')), 10_000))]);
  clearTimeout(deadline);
  // About 1 s here; the bound leaves a loaded machine room, far below systemd's stop timeout.
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
});
