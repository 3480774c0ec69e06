/**
 * Device confinement and hostile payloads, on aedes, an external mosquitto and the fleet server's
 * own mosquitto: device A cannot publish to or subscribe to device B's topics, a wrong secret is
 * refused, and 1,000 malformed payloads on A's topics are counted and dropped while the server and
 * device B carry on.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import { connect } from 'node:net';
import { alertFixture, startFleet, type BrokerKind, type TestDevice } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { MAX_PAYLOAD_BYTES } from '../../agent/src/protocol/index.js';

function connectRaw(url: string, dev: TestDevice, version: 4 | 5, secret = dev.secret): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { username: dev.id, password: secret, protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5000, clientId: `raw-${dev.id}-${Math.random().toString(36).slice(2, 8)}` });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => { c.end(true); reject(err); });
    // Closed before a CONNACK (without an error event): settle, or a caller's waitFor never retries.
    c.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

// mosquitto-embedded: the fleet server's own supervised mosquitto (broker.embedded.engine "mosquitto").
for (const kind of ['aedes', 'mosquitto', 'mosquitto-embedded'] as BrokerKind[]) {
  describe(`device confinement over ${kind}`, () => {
    const version = kind === 'aedes' ? 4 : 5;

    test('A cannot subscribe to or publish on B\'s topics; a wrong secret is refused', async (t) => {
      if (kind !== 'aedes' && !mosquittoAvailable()) return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const a = fleet.addDevice('dev-a');
      const b = fleet.addDevice('dev-b');
      await assert.rejects(waitFor('refusal', () => connectRaw(fleet.mqttUrl, a, version, 'not-the-secret').then(
        (c) => { c.end(true); return undefined; },
        (err: Error & { code?: number }) => { throw err; },
      ), 3000), (err: Error & { code?: number }) => [4, 5, 0x86, 0x87].includes(err.code ?? -1));
      // A device may not pretend to be another with its own secret either.
      await assert.rejects(connectRaw(fleet.mqttUrl, { id: b.id, secret: a.secret }, version));

      // mosquitto reloads its password file on SIGHUP asynchronously: retry until A is accepted.
      const ca = await waitFor('A connects', () => connectRaw(fleet.mqttUrl, a, version).catch(() => undefined), 5000, 100);
      t.after(() => { ca.end(true); });
      // B too: added just after A, it may come with the next reload (the server spaces them 0.5 s apart).
      const cb = await waitFor('B connects', () => connectRaw(fleet.mqttUrl, b, version).catch(() => undefined), 5000, 100);
      t.after(() => { cb.end(true); });
      const got: string[] = [];
      ca.on('message', (topic) => got.push(topic));
      for (const filter of ['ef/v1/dev/dev-b/alert', 'ef/v1/dev/dev-b/desired', 'ef/v1/dev/+/alert', 'ef/#', '#']) {
        // mqtt.js rejects a SUBACK failure (0x80) with ErrorWithSubackPacket; count that as refused.
        const granted = await ca.subscribeAsync(filter, { qos: 1 }).catch((err: Error) => {
          if (err.name !== 'ErrorWithSubackPacket') throw err;
          return [{ topic: filter, qos: 0x80 }];
        });
        // aedes refuses in SUBACK (0x80). mosquitto 2.0's acl_file grants the SUBACK and instead
        // checks read access per message at delivery (mosquitto.conf(5) acl_file), so for it the
        // proof is below: nothing of B's ever reaches A.
        if (kind === 'aedes') assert.ok(granted.every((g) => g.qos >= 0x80), `${filter} must be refused, got ${JSON.stringify(granted)}`);
      }
      // B publishes its own alert: A must not receive it; the server stores it.
      await cb.publishAsync('ef/v1/dev/dev-b/alert', JSON.stringify(alertFixture('b-own')), { qos: 1 });
      await waitFor('B alert stored', () => fleet.server.alerts.count('dev-b') === 1);
      // A publishes a well-formed alert on B's topic: refused by the broker, never stored under B.
      ca.publish('ef/v1/dev/dev-b/alert', JSON.stringify(alertFixture('a-spoof')), { qos: 1 }, () => undefined);
      ca.publish('ef/v1/dev/dev-b/state', JSON.stringify({ v: 1, online: true, ts: 1 }), { qos: 1 }, () => undefined);
      // A publishes on its own topic afterwards (new connection if the broker dropped the first).
      const ca2 = await connectRaw(fleet.mqttUrl, a, version);
      t.after(() => { ca2.end(true); });
      await ca2.publishAsync('ef/v1/dev/dev-a/alert', JSON.stringify(alertFixture('a-own')), { qos: 1 });
      await waitFor('A own alert stored', () => fleet.server.alerts.count('dev-a') === 1);
      assert.equal(fleet.server.alerts.get('dev-b', 'a-spoof'), undefined);
      assert.equal(fleet.server.alerts.count('dev-b'), 1);
      // Through its wildcard subscriptions A may get its own receipts (ef/v1/dev/dev-a/ack, for a-own:
      // mosquitto grants the SUBACK and filters per message); nothing outside its own subtree.
      assert.deepEqual(got.filter((topic) => !topic.startsWith('ef/v1/dev/dev-a/')), []);
      if (kind === 'aedes') {
        const c = fleet.server.broker!.counters;
        console.log(`aedes ACL: ${c.authFailures} auth failures, ${c.publishDenied} publishes denied, ${c.subscribeDenied} subscriptions denied`);
        assert.ok(c.publishDenied >= 1 && c.subscribeDenied >= 5 && c.authFailures >= 2);
      }
    });

    // Not over 'mosquitto' (an operator's own broker): binding client ids to users is its configuration (docs/operations.md).
    if (kind !== 'mosquitto') test('a device cannot take over another device\'s session by using its client id', async (t) => {
      if (!mosquittoAvailable() && kind !== 'aedes') return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const a = fleet.addDevice('dev-a');
      const b = fleet.addDevice('dev-b');
      const connect = (dev: TestDevice, clientId: string) => new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect(fleet.mqttUrl, { username: dev.id, password: dev.secret, protocolVersion: version, reconnectPeriod: 0, clientId });
        c.once('connect', () => resolve(c));
        c.once('error', (err) => { c.end(true); reject(err); });
      });
      const ca = await waitFor('A connects', () => connect(a, 'ef-dev-a').catch(() => undefined), 5000, 100);
      t.after(() => { ca.end(true); });
      // B, added just after A, may come with the next reload (the server spaces them 0.5 s apart).
      const own = await waitFor('B connects under its own id', () => connect(b, 'ef-dev-b').catch(() => undefined), 5000, 100);
      own.end(true);
      let aClosed = 0;
      ca.on('close', () => { aClosed += 1; });
      // B, with its own valid secret, asks for A's client id, five times.
      for (let i = 0; i < 5; i++) {
        const cb = await connect(b, 'ef-dev-a').catch((err: Error & { code?: number }) => err);
        if (kind === 'aedes') assert.equal((cb as { code?: number }).code, 2, 'aedes refuses the id (identifier rejected)');
        else (cb as MqttClient).end(true); // mosquitto: B gets a session under its own name instead
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(aClosed, 0, 'A was never disconnected');
      assert.ok(ca.connected);
      // A's own client id still works for A.
      await ca.publishAsync('ef/v1/dev/dev-a/alert', JSON.stringify(alertFixture('a-still-here')), { qos: 1 });
      await waitFor('A alert stored', () => fleet.server.alerts.count('dev-a') === 1);
    });

    // The broker keeps retained messages in memory: a device could fill the server's with megabyte
    // payloads, retained, on topics of its own invention. (An operator's own mosquitto: its configuration.)
    if (kind !== 'mosquitto') test('the broker keeps no oversized message, nor a retained one outside state and reported, nor an ota topic of the device\'s invention', async (t) => {
      if (!mosquittoAvailable() && kind !== 'aedes') return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const a = fleet.addDevice('dev-a');
      const root = 'ef/v1/dev/dev-a';
      const junk: Array<[string, number]> = [[`${root}/ota/junk-1`, 1024], [`${root}/state`, 700 * 1024], [`${root}/alert`, 700 * 1024]];
      // aedes also refuses retain where the server never reads a retained message (mosquitto 2.0 cannot, per topic).
      if (kind === 'aedes') junk.push([`${root}/telemetry`, 100], [`${root}/ota/req`, 100]);
      for (const [topic, bytes] of junk) {
        const c = await waitFor('A connects', () => connectRaw(fleet.mqttUrl, a, version).catch(() => undefined), 5000, 100);
        // A refused QoS 1 publish may get no PUBACK at all (aedes closes or ignores it): do not wait on it.
        await Promise.race([c.publishAsync(topic, Buffer.alloc(bytes, 0x61), { qos: 1, retain: true }).catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
        c.end(true);
      }
      const reader = await waitFor('A connects', () => connectRaw(fleet.mqttUrl, a, version).catch(() => undefined), 5000, 100);
      t.after(() => { reader.end(true); });
      const got: string[] = [];
      reader.on('message', (topic, payload) => { if (payload.length > 0 && payload[0] === 0x61) got.push(`${topic} (${payload.length} bytes)`); });
      await reader.subscribeAsync(`${root}/#`, { qos: 1 });
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(got, [], 'nothing of it was retained');
      // The oversized ones are refused from their packet header (connection closed), the rest when published.
      if (kind === 'aedes') {
        const c = fleet.server.broker!.counters;
        assert.ok(c.publishDenied + c.oversizePackets >= junk.length, JSON.stringify(c));
      }
    });

    // A packet is buffered whole before any limit sees it: a declared 200 MiB CONNECT, no login needed,
    // held 250 MiB a socket (the fleet server went from 135 to 1135 MiB with four).
    if (kind !== 'mosquitto') test('a packet declared larger than the broker reads is refused from its header, before login', async (t) => {
      if (!mosquittoAvailable() && kind !== 'aedes') return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const s = connect(Number(new URL(fleet.mqttUrl).port), '127.0.0.1');
      s.on('error', () => undefined);
      t.after(() => { s.destroy(); });
      await new Promise((r) => s.once('connect', r));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      // CONNECT with Remaining Length 200 MiB (variable byte integer), then 4 MiB of its body.
      s.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]));
      for (let i = 0; i < 4 && !s.destroyed; i++) s.write(Buffer.alloc(1 << 20, 0x61));
      await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('the broker kept reading the 200 MiB packet')), 5000))]);
      if (kind === 'aedes') assert.equal(fleet.server.broker!.counters.oversizePackets, 1);
      // A device's largest message (an alert with its snapshot) still goes through.
      const a = fleet.addDevice('dev-a');
      const c = await waitFor('A connects', () => connectRaw(fleet.mqttUrl, a, version).catch(() => undefined), 5000, 100);
      t.after(() => { c.end(true); });
      await c.publishAsync('ef/v1/dev/dev-a/alert', Buffer.alloc(MAX_PAYLOAD_BYTES.alert, 0x20), { qos: 1 });
      assert.equal(c.connected, true);
    });

    // A secret rotated because it leaked must end the sessions opened with it (mosquitto drops them
    // when it reloads its password file; aedes kept them, and stored their alerts).
    if (kind !== 'mosquitto') test('rotating a device\'s secret or removing the device ends its live sessions', async (t) => {
      if (!mosquittoAvailable() && kind !== 'aedes') return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      for (const how of ['rotate', 'remove'] as const) {
        const dev = fleet.addDevice(`dev-${how}`);
        const c = await waitFor('device connects', () => connectRaw(fleet.mqttUrl, dev, version).catch(() => undefined), 5000, 100);
        t.after(() => { c.end(true); });
        const closed = new Promise<void>((r) => c.once('close', () => r()));
        const res = how === 'rotate'
          ? await fleet.api('POST', '/api/devices', { id: dev.id, rotate: true })
          : await fleet.api('DELETE', `/api/devices/${dev.id}`);
        assert.ok(res.status < 300, JSON.stringify(res));
        await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error(`${how}: the old session is still open`)), 5000))]);
        await assert.rejects(connectRaw(fleet.mqttUrl, dev, version), `${how}: the old secret no longer connects`);
      }
    });

    test('1,000 malformed payloads are counted and dropped; server and other devices unaffected', async (t) => {
      if (kind !== 'aedes' && !mosquittoAvailable()) return t.skip('mosquitto binary not installed');
      const fleet = await startFleet({ broker: kind });
      t.after(() => fleet.stop());
      const a = fleet.addDevice('dev-a');
      const b = fleet.addDevice('dev-b');
      const ca = await waitFor('A connects', () => connectRaw(fleet.mqttUrl, a, version).catch(() => undefined), 5000, 100);
      t.after(() => { ca.end(true); });
      const linkB = fleet.agentLink(b);
      linkB.start();
      await linkB.waitConnected();
      const kinds = ['alert', 'telemetry', 'state', 'reported', 'cmd/res'];
      const started = Date.now();
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) {
        let topic = `ef/v1/dev/dev-a/${kinds[i % kinds.length]}`;
        let payload: string | Buffer;
        if (i % 10 === 9) { // 100 oversized, over the limit of their kind
          const k = (['telemetry', 'state', 'reported', 'cmd/res'] as const)[(i - 9) / 10 % 4];
          topic = `ef/v1/dev/dev-a/${k}`;
          payload = Buffer.alloc(MAX_PAYLOAD_BYTES[k] + 1, 0x20);
        }
        else if (i % 2 === 0) payload = `{"v":1,"id":"x${i}",`; // 500 bad JSON
        else payload = JSON.stringify({ v: 1, id: 42, ts: 'yesterday', online: 'maybe', score: -3 }); // 400 wrong types
        sends.push(ca.publishAsync(topic, payload, { qos: 1 }));
        // B keeps working in the middle of the storm.
        if (i === 500) linkB.publishAlert(alertFixture('b-during-storm'));
      }
      await Promise.all(sends);
      await waitFor('1000 drops counted', () => fleet.server.ingest.getStats().dropped >= 1000, 20_000);
      const st = fleet.server.ingest.getStats();
      await waitFor('B alert stored', () => fleet.server.alerts.count('dev-b') === 1, 10_000);
      // A itself is still served after the storm.
      await ca.publishAsync('ef/v1/dev/dev-a/alert', JSON.stringify(alertFixture('a-after')), { qos: 1 });
      await waitFor('A valid alert stored', () => fleet.server.alerts.count('dev-a') === 1);
      const health = await fetch(`${fleet.httpUrl}/api/health`);
      assert.equal(health.status, 200);
      const metrics = await fleet.api<string>('GET', '/metrics');
      console.log(`${kind}: 1000 malformed in ${Date.now() - started} ms; dropped ${st.dropped}: ${JSON.stringify(st.droppedBy)}`);
      assert.equal(st.dropped, 1000);
      assert.equal(Object.entries(st.droppedBy).filter(([k]) => k.endsWith(':oversized')).reduce((s, [, n]) => s + n, 0), 100);
      assert.equal(Object.entries(st.droppedBy).filter(([k]) => k.endsWith(':json')).reduce((s, [, n]) => s + n, 0), 500);
      assert.equal(Object.entries(st.droppedBy).filter(([k]) => k.endsWith(':schema')).reduce((s, [, n]) => s + n, 0), 400);
      assert.match(metrics.body, /ef_ingest_dropped_total\{kind="alert",reason="json"\} \d+/);
      assert.equal(fleet.server.alerts.count(), 2);
      // Malformed chunk requests (OTA has its own subscription) show in /api/status too.
      await ca.publishAsync('ef/v1/dev/dev-a/ota/req', '{"v":1,', { qos: 1 });
      await ca.publishAsync('ef/v1/dev/dev-a/ota/req', JSON.stringify({ v: 1, name: 7 }), { qos: 1 });
      await waitFor('ota drops in /api/status', async () => ((await fleet.api<{ ota: { dropped: number } }>('GET', '/api/status')).body.ota.dropped === 2) || undefined, 5000, 50);
    });
  });
}
