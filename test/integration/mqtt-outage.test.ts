/**
 * Broker outage: the broker is down for 30 s while alerts keep firing; after it returns every alert
 * is stored exactly once and in order. aedes (embedded, restarted in-process on the same port) and
 * mosquitto (SIGTERM, restarted with its persistence file) run concurrently to share the 30 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertFixture, startFleet, type BrokerKind } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const OUTAGE_MS = Number(process.env.EF_OUTAGE_MS ?? 30_000);

async function outage(kind: BrokerKind): Promise<void> {
  const fleet = await startFleet({ broker: kind });
  try {
    const dev = fleet.addDevice('cam-out');
    const link = fleet.agentLink(dev, { backoff: { initialMs: 200, maxMs: 2000 } });
    link.start();
    await link.waitConnected(10_000);
    const ids: string[] = [];
    const fire = () => { const id = `a-${String(ids.length).padStart(3, '0')}`; ids.push(id); link.publishAlert(alertFixture(id)); };
    // Alerts in flight at the moment the broker goes away.
    for (let i = 0; i < 10; i++) fire();
    const stopBroker = kind === 'aedes' ? () => fleet.server.broker!.stop() : () => fleet.mosquitto!.stop();
    const startBroker = kind === 'aedes' ? () => fleet.server.broker!.start() : () => fleet.mosquitto!.start();
    await stopBroker();
    const downAt = Date.now();
    await waitFor('link notices the outage', () => !link.status().connected, 5000);
    // Keep firing during the outage, spread over its length.
    while (Date.now() - downAt < OUTAGE_MS) {
      fire();
      await new Promise((r) => setTimeout(r, OUTAGE_MS / 20));
    }
    const pendingAtReturn = link.outbox.stats().pending;
    await startBroker();
    for (let i = 0; i < 5; i++) fire();
    await waitFor(`${ids.length} alerts stored`, () => fleet.server.alerts.count('cam-out') >= ids.length, 30_000).catch((err: unknown) => { console.log(kind, JSON.stringify(link.status()), fleet.server.alerts.count('cam-out'), JSON.stringify(fleet.server.status())); throw err; });
    await waitFor('outbox drained', () => link.outbox.stats().pending === 0, 10_000);
    const stored = fleet.server.alerts.idsInDeviceOrder('cam-out');
    const arrival = fleet.server.alerts.idsInArrivalOrder('cam-out');
    const inversions = arrival.filter((id, i) => i > 0 && id < arrival[i - 1]).length;
    const st = fleet.server.ingest.getStats();
    console.log(`${kind}: outage ${Math.round((Date.now() - downAt) / 1000)} s, ${ids.length} alerts fired, ${pendingAtReturn} pending in the outbox when the broker returned, ${stored.length} stored, ${st.alertsDuplicate} duplicate deliveries ignored, reconnects ${link.status().connects}, receipt-timeout resends ${link.status().resends}, arrival-order inversions ${inversions}`);
    assert.equal(stored.length, ids.length, 'every alert stored exactly once');
    assert.deepEqual(stored, ids, 'per-device order kept (outbox seq)');
    assert.ok(pendingAtReturn >= 15, 'alerts fired during the outage waited in the outbox');
  } finally {
    await fleet.stop();
  }
}

test('broker stopped for 30 s while alerts fire: every alert stored exactly once (aedes and mosquitto)', { timeout: OUTAGE_MS + 60_000 }, async (t) => {
  const runs: Promise<void>[] = [outage('aedes')];
  if (mosquittoAvailable()) runs.push(outage('mosquitto'));
  else t.diagnostic('mosquitto variant skipped: binary not installed');
  await Promise.all(runs);
});

test('an alert the broker acknowledged but lost is resent after the receipt timeout', async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  // Swallow the first delivery of each of two alerts after the broker's PUBACK: a broker losing them.
  const lost = new Set(['lost-1', 'lost-2']);
  const ingest = fleet.server.ingest;
  const handle = ingest.handle.bind(ingest);
  ingest.handle = (topic, payload) => {
    const id = topic.endsWith('/alert') ? (JSON.parse(payload.toString()) as { id: string }).id : '';
    if (lost.delete(id)) return;
    handle(topic, payload);
  };
  const dev = fleet.addDevice('cam-lost');
  const link = fleet.agentLink(dev, { ackTimeoutMs: 500 });
  link.start();
  await link.waitConnected();
  for (const id of ['ok-0', 'lost-1', 'ok-2', 'lost-2', 'ok-4']) link.publishAlert(alertFixture(id));
  await waitFor('all 5 stored', () => fleet.server.alerts.count('cam-lost') === 5, 10_000);
  await waitFor('outbox drained', () => link.outbox.stats().pending === 0, 5000);
  assert.ok(link.status().resends >= 1, 'the receipt timeout triggered a resend');
  assert.deepEqual(fleet.server.alerts.idsInDeviceOrder('cam-lost'), ['ok-0', 'lost-1', 'ok-2', 'lost-2', 'ok-4']);
  console.log(`lost after PUBACK: resends ${link.status().resends}, duplicates ignored ${fleet.server.ingest.getStats().alertsDuplicate}, arrival order ${fleet.server.alerts.idsInArrivalOrder('cam-lost').join(',')}`);
});
