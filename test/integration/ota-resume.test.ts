/**
 * Chunked transfer resume: a broker restart in the middle of a download, and an agent restart in
 * the middle of a download. Both continue from the bytes already on disk (the partial file is
 * fsync'd per chunk), so the server serves each chunk about once, not the artifact again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { startOtaAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { OTA_CHUNK_BYTES, type OtaReport } from '../../agent/src/protocol/ota.js';

let fleet: TestFleet;
let factoryDir: string;

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0' });
});
after(async () => { await fleet?.stop(); });

async function publishBig(version: string) {
  // The slow stand-in carries a 768×768 float weight: ~2.4 MB, 37 chunks of 64 KiB.
  const dir = writeStandIn(join(fleet.dir, 'src', version), { name: 'standin', version, kind: 'slow', slowLayers: 1 });
  const r = (await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir })).record;
  return r;
}

function reportedOta(id: string): OtaReport | undefined {
  return (fleet.server.devices.get(id)?.reported as { ota?: OtaReport } | null)?.ota;
}

test('a broker restart mid-transfer: the download resumes from the chunks it had', async () => {
  const a = await publishBig('2.0.0');
  const totalChunks = Math.ceil(a.size / OTA_CHUNK_BYTES);
  let stoppedAt = -1;
  let restarted: Promise<void> | undefined;
  const agent = await startOtaAgent(fleet, fleet.addDevice('cam-resume'), {
    factoryDir, factoryVersion: '1.0.0', requestTimeoutMs: 500, gate: { minFrames: 3, maxLatencyRatio: 1000, latencyFloorMs: 1000 },
    onProgress: (bytes) => {
      if (stoppedAt >= 0 || bytes < 8 * OTA_CHUNK_BYTES) return;
      stoppedAt = bytes;
      const broker = fleet.server.broker!;
      // Outside the MQTT client's message callback that delivered this chunk.
      restarted = new Promise<void>((resolve, reject) => setTimeout(() => { broker.stop().then(() => broker.start()).then(resolve, reject); }, 0));
    },
  });
  try {
    fleet.server.ota.desired.set('cam-resume', 'detector', { version: '2.0.0', manifest: a.manifest, signature: a.signature, healthWindowMs: 200 });
    await waitFor('broker stopped mid-transfer', () => restarted !== undefined, 15_000);
    await restarted;
    // Retained messages of the embedded broker live in memory: the agent keeps its desired state,
    // and a restarted server republishes it (OtaService.start).
    await waitFor('2.0.0 committed after the broker restart', () => reportedOta('cam-resume')?.phase === 'committed' && reportedOta('cam-resume')?.version === '2.0.0', 30_000);
    const served = fleet.server.ota.chunks.stats.chunksServed;
    assert.ok(stoppedAt > 0 && stoppedAt < a.size, `stopped at ${stoppedAt} of ${a.size} bytes`);
    assert.ok(served <= totalChunks + 3, `chunks served ${served} for ${totalChunks} chunks: resumed, not restarted`);
    assert.ok(agent.link.status().connects >= 2, 'the link reconnected');
    process.stdout.write(`ota-resume: broker restarted at ${stoppedAt}/${a.size} bytes; ${served} chunks served for ${totalChunks}\n`);
  } finally {
    await agent.stop();
  }
});

test('an agent restart mid-transfer: the new process starts from the partial file', async () => {
  const a = await publishBig('3.0.0');
  const stateDir = join(fleet.dir, 'agents', 'cam-resume2', 'state');
  const dev = fleet.addDevice('cam-resume2');
  let stopAt: ((b: number) => void) | undefined;
  const halfway = new Promise<number>((resolve) => { stopAt = resolve; });
  const first = await startOtaAgent(fleet, dev, {
    factoryDir, factoryVersion: '1.0.0', stateDir, requestTimeoutMs: 500,
    onProgress: (bytes) => { if (bytes >= 10 * OTA_CHUNK_BYTES) stopAt?.(bytes); },
  });
  fleet.server.ota.desired.set(dev.id, 'detector', { version: '3.0.0', manifest: a.manifest, signature: a.signature, healthWindowMs: 200 });
  await halfway;
  await first.stop();
  const part = first.manager.store.partPath(a.manifest);
  const kept = statSync(part).size;
  assert.ok(kept >= 10 * OTA_CHUNK_BYTES && kept < a.size, `partial file holds ${kept} of ${a.size}`);
  const second = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', stateDir, requestTimeoutMs: 500, gate: { minFrames: 3, maxLatencyRatio: 1000, latencyFloorMs: 1000 } });
  try {
    const resumedFrom = await waitFor('verifying report with resumedFrom', () => {
      const o = reportedOta(dev.id);
      return o?.version === '3.0.0' && o.resumedFrom !== undefined ? o.resumedFrom : undefined;
    }, 20_000);
    assert.ok(resumedFrom >= kept - OTA_CHUNK_BYTES, `resumed from ${resumedFrom} (partial file had ${kept})`);
    await waitFor('3.0.0 committed', () => reportedOta(dev.id)?.phase === 'committed' && reportedOta(dev.id)?.version === '3.0.0', 20_000);
    process.stdout.write(`ota-resume: agent restarted with ${kept}/${a.size} bytes on disk, resumed from ${resumedFrom}\n`);
  } finally {
    await second.stop();
  }
});
