/**
 * OTA chunk requests dropped unanswered (ota.dropped / ota.droppedBy in /api/status) are in
 * Prometheus too: ef_ota_chunk_requests_dropped_total{reason}, with every reason at 0 from the start,
 * and the chunks and bytes served in ef_ota_chunks_served_total and ef_ota_chunk_bytes_served_total.
 * Well-formed requests answered with an error (a version not desired for the device, one not in the
 * registry) count in ef_ota_chunk_requests_refused_total{code}, each code at 0 from the start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a malformed ota/req dropped by the server shows in /metrics; a served chunk and a refused request are counted', { timeout: 30_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-metrics');
  const before = (await fleet.api<string>('GET', '/metrics')).body;
  for (const reason of ['rate', 'topic', 'oversized', 'json', 'schema']) {
    assert.equal(metric(before, `ef_ota_chunk_requests_dropped_total{reason="${reason}"}`), 0, `${reason} at 0 before any drop`);
  }
  assert.equal(metric(before, 'ef_ota_chunks_served_total'), 0);
  for (const code of ['E_NOT_DESIRED', 'E_NOT_FOUND', 'E_READ']) {
    assert.equal(metric(before, `ef_ota_chunk_requests_refused_total{code="${code}"}`), 0, `${code} at 0 before any refusal`);
  }

  const ota = fleet.server.ota;
  const { record } = await publishModelDir(ota.registry, ota.key.privateKey, { dir: writeStandIn(join(fleet.dir, 'src'), { name: 'det', version: '2.0.0', kind: 'good' }) });
  ota.desired.set(dev.id, 'detector', { version: '2.0.0', manifest: record.manifest, signature: record.signature });
  const c = await mqtt.connectAsync(fleet.mqttUrl, { username: dev.id, password: dev.secret, clientId: `ef-${dev.id}`, protocolVersion: 4, reconnectPeriod: 0 });
  t.after(() => c.endAsync(true));
  let chunks = 0;
  c.on('message', () => { chunks += 1; });
  await c.subscribeAsync(`ef/v1/dev/${dev.id}/ota/chunk`, { qos: 1 });
  const topic = `ef/v1/dev/${dev.id}/ota/req`;
  await c.publishAsync(topic, '{not json', { qos: 1 });
  await c.publishAsync(topic, JSON.stringify({ v: 1, reqId: 'r1', name: 'det' }), { qos: 1 });
  const length = Math.min(1024, record.manifest.size);
  await c.publishAsync(topic, JSON.stringify({ v: 1, reqId: 'r2', name: 'det', version: '2.0.0', target: record.manifest.target, offset: 0, length }), { qos: 1 });
  // Not the desired version: answered with E_NOT_DESIRED, counted as refused.
  await c.publishAsync(topic, JSON.stringify({ v: 1, reqId: 'r3', name: 'det', version: '9.9.9', target: record.manifest.target, offset: 0, length }), { qos: 1 });
  await waitFor('the chunk served and the refusal answered', () => chunks === 2, 5_000);
  await waitFor('both malformed requests dropped', () => ota.chunks.stats.dropped === 2, 5_000);

  const after = (await fleet.api<string>('GET', '/metrics')).body;
  assert.equal(metric(after, 'ef_ota_chunk_requests_dropped_total{reason="json"}'), 1);
  assert.equal(metric(after, 'ef_ota_chunk_requests_dropped_total{reason="schema"}'), 1);
  assert.equal(metric(after, 'ef_ota_chunk_requests_dropped_total{reason="rate"}'), 0);
  assert.equal(metric(after, 'ef_ota_chunks_served_total'), 1);
  assert.equal(metric(after, 'ef_ota_chunk_requests_refused_total{code="E_NOT_DESIRED"}'), 1);
  assert.equal(metric(after, 'ef_ota_chunk_requests_refused_total{code="E_NOT_FOUND"}'), 0);
  assert.equal(ota.chunks.stats.refused, 1);
  assert.equal(metric(after, 'ef_ota_chunk_bytes_served_total'), length);
  // The same counts as /api/status.
  const status = (await fleet.api<{ ota: { droppedBy: Record<string, number> } }>('GET', '/api/status')).body.ota;
  assert.deepEqual(status.droppedBy, { json: 1, schema: 1 });
});
