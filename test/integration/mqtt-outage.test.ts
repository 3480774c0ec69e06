/**
 * Broker outage: the broker is down for 12 s while alerts keep firing; after it returns every alert
 * is stored exactly once and in order. aedes (embedded, restarted in-process on the same port) and
 * mosquitto (SIGTERM, restarted with its persistence file) run concurrently to share the 12 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertFixture, startFleet, type BrokerKind } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

// Longer than every period that acts during it: the link's reconnect backoff reaches its 2 s cap
// within 5 s and then retries at it, the fleet server's mosquitto client retries every 1 s, and the
// receipt timeout (ackTimeoutMs, 10 s) of the alerts in flight when the broker went away runs out
// before it returns. The 30 s keepalive plays no part: a stopped broker closes the socket, which the
// link notices at once. EF_OUTAGE_MS sets a longer one.
const OUTAGE_MS = Number(process.env.EF_OUTAGE_MS ?? 12_000);

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

test(`broker stopped for ${OUTAGE_MS / 1000} s while alerts fire: every alert stored exactly once (aedes and mosquitto)`, { timeout: OUTAGE_MS + 60_000 }, async (t) => {
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

/** A TCP proxy that forwards device → broker at `bytesPerS` (a cellular uplink) and counts what the device wrote. */
async function slowUplink(targetPort: number, bytesPerS: number): Promise<{ port: number; written: () => number; close: () => void }> {
  const { createServer, connect } = await import('node:net');
  let written = 0;
  const server = createServer((dev) => {
    const broker = connect(targetPort, '127.0.0.1');
    const queue: Buffer[] = [];
    dev.on('data', (d: Buffer) => { written += d.length; queue.push(d); });
    const tick = setInterval(() => {
      let budget = bytesPerS / 20;
      while (budget > 0 && queue.length) {
        const b = queue[0];
        const n = Math.min(b.length, budget);
        broker.write(b.subarray(0, n));
        budget -= n;
        if (n === b.length) queue.shift(); else queue[0] = b.subarray(n);
      }
    }, 50);
    broker.pipe(dev);
    const end = () => { clearInterval(tick); dev.destroy(); broker.destroy(); };
    for (const s of [dev, broker]) { s.on('close', end); s.on('error', end); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, written: () => written, close: () => server.close() };
}

test('a slow uplink is not flooded with resends: the receipt timeout starts when the broker has taken an alert', { timeout: 60_000 }, async (t) => {
  // Timed from the hand-off, the whole window was resent while the first copies were still being
  // sent: 2.8× the bytes at 500 kbit/s, every new alert queued behind duplicates.
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-cellular');
  const proxy = await slowUplink(fleet.server.mqttPort!, 250_000);
  t.after(() => proxy.close());
  // 8 alerts with ~200 KB snapshots take ~7 s to send; the receipt timeout is 2 s.
  const link = fleet.agentLink(dev, { url: `mqtt://127.0.0.1:${proxy.port}`, ackTimeoutMs: 2000 });
  link.start();
  await link.waitConnected(10_000);
  const jpeg = Buffer.alloc(150 * 1024, 7).toString('base64');
  const base = proxy.written();
  for (let i = 0; i < 8; i++) link.publishAlert({ ...alertFixture(`cell-${i}`), snapshot: { contentType: 'image/jpeg', redacted: true, width: 1280, height: 720, dataBase64: jpeg } });
  await waitFor('all 8 receipted', () => link.status().outbox.pending === 0, 45_000, 200);
  const payload = 8 * jpeg.length;
  const sent = proxy.written() - base;
  console.log(`slow uplink: ${Math.round(sent / 1024)} KiB written for ${Math.round(payload / 1024)} KiB of alerts; resends ${link.status().resends}`);
  assert.equal(link.status().resends, 0);
  assert.ok(sent < 1.2 * payload, `${sent} bytes written for ${payload}`);
  assert.equal(fleet.server.alerts.count('cam-cellular'), 8);
});
