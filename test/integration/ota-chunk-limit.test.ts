/**
 * Per-device limit on OTA chunk requests (config `ota`): a device asking for many chunks at once gets
 * its burst and the sustained rate, and of the rest only its newest request waits, the others are
 * dropped unanswered and counted in /api/status (ota.droppedBy.rate), while another device is served
 * from its own budget. The agent's own downloader, one chunk at a time, is paced by the limit and
 * loses nothing, whether the limit is the default or far below its speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { ChunkDownloader } from '../../agent/src/ota/chunk-downloader.js';
import type { Manifest } from '../../agent/src/protocol/manifest.js';

async function publishFor(fleet: TestFleet, deviceIds: string[], kind: 'good' | 'slow'): Promise<Manifest> {
  const dir = writeStandIn(join(fleet.dir, 'src', kind), { name: 'det', version: '2.0.0', kind });
  const ota = fleet.server.ota;
  const { record } = await publishModelDir(ota.registry, ota.key.privateKey, { dir });
  for (const id of deviceIds) ota.desired.set(id, 'detector', { version: '2.0.0', manifest: record.manifest, signature: record.signature });
  return record.manifest;
}

/**
 * The agent's own downloader fetches a published stand-in over an agent link, one chunk at a time,
 * with its own request timeout (3 s) and no retry: a request the server dropped fails the download
 * (and is counted in droppedBy.rate). With 1 s, a stall of the loaded test machine over 1 s could fail it too.
 */
async function downloadAsAgent(fleet: TestFleet, name: string) {
  const dev = fleet.addDevice(name);
  const manifest = await publishFor(fleet, [dev.id], 'slow');
  const link = fleet.agentLink(dev);
  link.start();
  await link.waitConnected();
  const d = new ChunkDownloader({ send: (req) => link.publishRaw(`ef/v1/dev/${dev.id}/ota/req`, JSON.stringify(req), 1), maxRetries: 0 });
  link.on('ota', (m: { payload: Buffer }) => d.onChunkMessage(m.payload));
  return { r: await d.download(manifest, join(fleet.dir, `${name}.part`)), manifest };
}

test('a device flooding ota/req gets its burst and rate; the rest is dropped and counted; another device is served', { timeout: 30_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes', config: { ota: { perDeviceChunkRate: 5, perDeviceChunkBurst: 10 } } });
  t.after(() => fleet.stop());
  const flooder = fleet.addDevice('cam-flood');
  const calm = fleet.addDevice('cam-calm');
  const manifest = await publishFor(fleet, [flooder.id, calm.id], 'good');
  const connect = async (dev: { id: string; secret: string }) => {
    const c = await mqtt.connectAsync(fleet.mqttUrl, { username: dev.id, password: dev.secret, clientId: `ef-${dev.id}`, protocolVersion: 4, reconnectPeriod: 0 });
    t.after(() => c.endAsync(true));
    let chunks = 0;
    c.on('message', () => { chunks += 1; });
    await c.subscribeAsync(`ef/v1/dev/${dev.id}/ota/chunk`, { qos: 1 });
    return { c, chunks: () => chunks };
  };
  const f = await connect(flooder);
  const k = await connect(calm);
  const req = (id: string, i: number) => JSON.stringify({ v: 1, reqId: `r${i}`, name: 'det', version: '2.0.0', target: manifest.target, offset: 0, length: Math.min(1024, manifest.size) });
  const N = 300;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => f.c.publishAsync(`ef/v1/dev/${flooder.id}/ota/req`, req(flooder.id, i), { qos: 1 })));
  const stats = () => fleet.server.ota.chunks.stats;
  await waitFor('every flood request served or dropped', () => stats().chunksServed + (stats().droppedBy.rate ?? 0) === N, 10_000);
  const elapsedS = (performance.now() - t0) / 1000;
  const served = stats().chunksServed;
  t.diagnostic(`flood of ${N}: ${served} served, ${stats().droppedBy.rate} dropped for rate, in ${elapsedS.toFixed(2)} s`);
  assert.ok(served >= 10 && served <= 10 + Math.ceil(5 * elapsedS) + 1, `the burst (10) and 5/s served (${served})`);
  await waitFor('the flooder got what was served', () => f.chunks() === served, 5_000);
  // The other device's budget is its own.
  for (let i = 0; i < 3; i++) await k.c.publishAsync(`ef/v1/dev/${calm.id}/ota/req`, req(calm.id, i), { qos: 1 });
  await waitFor('the calm device served', () => k.chunks() === 3, 5_000);
  const status = (await fleet.api<{ ota: { dropped: number; droppedBy: Record<string, number> } }>('GET', '/api/status')).body.ota;
  assert.equal(status.droppedBy.rate, N - served);
  assert.equal(status.dropped, N - served);
});

test('the default limit leaves the agent\'s downloader at full speed untouched', { timeout: 30_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const t0 = performance.now();
  const { r, manifest } = await downloadAsAgent(fleet, 'cam-dl');
  const s = (performance.now() - t0) / 1000;
  t.diagnostic(`${r.chunks} chunks in ${s.toFixed(2)} s (${(r.chunks / s).toFixed(0)}/s)`);
  assert.equal(r.bytes, manifest.size);
  assert.equal(r.retries, 0);
  assert.equal(fleet.server.ota.chunks.stats.droppedBy.rate ?? 0, 0);
});

test('a downloader faster than the limit is paced, not dropped: no request times out', { timeout: 30_000 }, async () => {
  // 37 chunks at 20/s after a burst of 5: about 1.6 s of waiting. A dropped request would cost the
  // downloader its request timeout and, with maxRetries 0, fail the download (E_TRANSFER_STALLED).
  const fleet = await startFleet({ broker: 'aedes', config: { ota: { perDeviceChunkRate: 20, perDeviceChunkBurst: 5 } } });
  try {
    const { r, manifest } = await downloadAsAgent(fleet, 'cam-paced');
    assert.ok(r.chunks > 5 + 20, `more chunks (${r.chunks}) than the burst and one second of the rate, so the limit was reached`);
    assert.equal(r.bytes, manifest.size);
    assert.equal(r.retries, 0);
    assert.equal(fleet.server.ota.chunks.stats.droppedBy.rate ?? 0, 0);
  } finally {
    await fleet.stop();
  }
});
