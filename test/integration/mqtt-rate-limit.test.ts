/**
 * Per-device ingest limit: a device that floods alerts loses the excess (counted, reason "rate")
 * while another device is served as usual, and an alert of its own agent that hit the limit is not
 * acknowledged, so the agent's outbox sends it again and it is stored once the bucket refills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { alertFixture, startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { DeviceRateLimiter } from '../../fleet-server/src/ingest/ingest.js';

test('token bucket per device: burst, then the sustained rate; devices do not share', () => {
  let now = 0;
  const l = new DeviceRateLimiter(10, 5, () => now);
  const passed = (id: string, n: number) => Array.from({ length: n }, () => l.take(id)).filter(Boolean).length;
  assert.equal(passed('a', 8), 5, 'the burst');
  assert.equal(passed('b', 5), 5, 'another device has its own bucket');
  now += 300; // 0.3 s at 10/s
  assert.equal(passed('a', 8), 3);
  now += 10_000;
  assert.equal(passed('a', 8), 5, 'refilled to the burst, not beyond');
});

test('a flooding device is limited and counted; others are not; its own agent\'s alert arrives on the resend', { timeout: 60_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes', config: { ingest: { perDeviceRate: 0.5, perDeviceBurst: 50, perDeviceStateRate: 5, perDeviceStateBurst: 50 } } });
  t.after(() => fleet.stop());
  const a = fleet.addDevice('flood-a');
  const b = fleet.addDevice('calm-b');
  const raw = await mqtt.connectAsync(fleet.mqttUrl, { username: a.id, password: a.secret, protocolVersion: 4, clientId: 'raw-flood-a', reconnectPeriod: 0 });
  t.after(() => raw.endAsync(true));
  const linkA = fleet.agentLink(a);
  const linkB = fleet.agentLink(b);
  for (const l of [linkA, linkB]) l.start();
  await Promise.all([linkA.waitConnected(), linkB.waitConnected()]);
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < 500; i++) {
    sends.push(raw.publishAsync(`ef/v1/dev/${a.id}/alert`, JSON.stringify(alertFixture(`flood-${i}`)), { qos: 1 }));
    if (i === 250) linkB.publishAlert(alertFixture('calm-during-flood'));
  }
  await Promise.all(sends);
  await waitFor('B stored during the flood', () => fleet.server.alerts.count(b.id) === 1, 10_000);
  const limitedNow = () => fleet.server.ingest.getStats().droppedBy['alert:rate'] ?? 0;
  await waitFor('the flood processed', () => fleet.server.alerts.count(a.id) + limitedNow() === 500, 10_000);
  const limited = limitedNow();
  t.diagnostic(`flood: ${fleet.server.alerts.count(a.id)} of 500 stored, ${limited} dropped for rate`);
  assert.ok(limited >= 400, `most of the flood is limited (${limited})`);
  assert.equal(fleet.server.ingest.getStats().droppedBy['alert:json'] ?? 0, 0);
  // A's bucket now holds less than one token (0.5/s refill): the agent's own alert is limited, gets
  // no receipt, and is sent again after its acknowledgement timeout, when the bucket has refilled.
  const dupBefore = fleet.server.ingest.getStats().alertsDuplicate;
  linkA.publishAlert(alertFixture('agent-after-flood'));
  await waitFor('the agent alert stored', () => fleet.server.alerts.get(a.id, 'agent-after-flood') !== undefined, 30_000);
  await waitFor('A\'s outbox empty', () => linkA.status().outbox.pending === 0, 10_000);
  const resends = linkA.status().resends;
  const limitedAgent = limitedNow() - limited;
  // A receipt slower than the ack timeout also causes a resend, which is then a duplicate.
  const duplicates = fleet.server.ingest.getStats().alertsDuplicate - dupBefore;
  t.diagnostic(`the agent alert was limited ${limitedAgent} time(s) and sent ${1 + resends} time(s)`);
  // Every send of it was limited, stored once, or a duplicate: nothing lost, nothing stored twice.
  assert.equal(limitedAgent + 1 + duplicates, 1 + resends);
  assert.equal(fleet.server.alerts.count(a.id), 500 - limited + 1, 'the flood\'s stored alerts and the agent\'s, once');
  const metrics = await fleet.api<string>('GET', '/metrics');
  assert.match(metrics.body, /ef_ingest_dropped_total\{kind="alert",reason="rate"\} \d+/);
});
