/**
 * Chunked transfer resume: a broker restart (embedded aedes, and Debian's mosquitto with its
 * persistence) in the middle of a download, and an agent restart in
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
import { mosquittoAvailable } from '../helpers/mosquitto.js';

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

async function brokerRestart(kind: 'aedes' | 'mosquitto'): Promise<void> {
  // Each broker gets its own fleet: mosquitto's runs with the fleet server on an external broker.
  const f = kind === 'aedes' ? fleet : await startFleet({ broker: 'mosquitto' });
  const id = `cam-resume-${kind}`;
  try {
    const dir = writeStandIn(join(f.dir, 'src', `2.0.0-${kind}`), { name: 'standin', version: '2.0.0', kind: 'slow', slowLayers: 1 });
    const a = (await publishModelDir(f.server.ota.registry, f.server.ota.key.privateKey, { dir })).record;
    const totalChunks = Math.ceil(a.size / OTA_CHUNK_BYTES);
    let stoppedAt = -1;
    let restarted: Promise<void> | undefined;
    const stop = kind === 'aedes' ? () => f.server.broker!.stop() : () => f.mosquitto!.stop();
    const start = kind === 'aedes' ? () => f.server.broker!.start() : () => f.mosquitto!.start();
    const agent = await startOtaAgent(f, f.addDevice(id), {
      factoryDir: writeStandIn(join(f.dir, 'factory'), { name: 'standin', version: '1.0.0' }), factoryVersion: '1.0.0', requestTimeoutMs: 500,
      gate: { minFrames: 3, maxLatencyRatio: 1000, latencyFloorMs: 1000 },
      onProgress: (bytes) => {
        if (stoppedAt >= 0 || bytes < 8 * OTA_CHUNK_BYTES) return;
        stoppedAt = bytes;
        // Outside the MQTT client's message callback that delivered this chunk.
        restarted = new Promise<void>((resolve, reject) => setTimeout(() => { stop().then(start).then(resolve, reject); }, 0));
      },
    });
    try {
      f.server.ota.desired.set(id, 'detector', { version: '2.0.0', manifest: a.manifest, signature: a.signature, healthWindowMs: 200 });
      await waitFor(`${kind} stopped mid-transfer`, () => restarted !== undefined, 15_000);
      await restarted;
      // The agent keeps its desired state in memory; a restarted server republishes it (OtaService.start).
      const ota = () => (f.server.devices.get(id)?.reported as { ota?: OtaReport } | null)?.ota;
      await waitFor(`2.0.0 committed after the ${kind} restart`, () => ota()?.phase === 'committed' && ota()?.version === '2.0.0', 40_000);
      const served = f.server.ota.chunks.stats.chunksServed;
      assert.ok(stoppedAt > 0 && stoppedAt < a.size, `stopped at ${stoppedAt} of ${a.size} bytes`);
      assert.ok(served <= totalChunks + 3, `chunks served ${served} for ${totalChunks} chunks: resumed, not restarted`);
      assert.ok(agent.link.status().connects >= 2, 'the link reconnected');
      process.stdout.write(`ota-resume: ${kind} restarted at ${stoppedAt}/${a.size} bytes; ${served} chunks served for ${totalChunks}\n`);
    } finally {
      await agent.stop();
    }
  } finally {
    if (f !== fleet) await f.stop();
  }
}

test('a broker restart mid-transfer (aedes and mosquitto): the download resumes from the chunks it had', async (t) => {
  const runs = [brokerRestart('aedes')];
  if (mosquittoAvailable()) runs.push(brokerRestart('mosquitto'));
  else t.diagnostic('mosquitto variant skipped: binary not installed');
  await Promise.all(runs);
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
  let firstBytes = -1;
  const servedBefore = fleet.server.ota.chunks.stats.chunksServed;
  const second = await startOtaAgent(fleet, dev, {
    factoryDir, factoryVersion: '1.0.0', stateDir, requestTimeoutMs: 500, gate: { minFrames: 3, maxLatencyRatio: 1000, latencyFloorMs: 1000 },
    onProgress: (bytes) => { if (firstBytes < 0) firstBytes = bytes; },
  });
  try {
    await waitFor('3.0.0 committed', () => reportedOta(dev.id)?.phase === 'committed' && reportedOta(dev.id)?.version === '3.0.0', 20_000);
    // The first chunk the new process wrote ends one chunk past what the killed one left.
    assert.equal(firstBytes, Math.min(a.size, kept + OTA_CHUNK_BYTES), `first write ended at ${firstBytes}; partial file had ${kept}`);
    const served = fleet.server.ota.chunks.stats.chunksServed - servedBefore;
    assert.ok(served <= Math.ceil((a.size - kept) / OTA_CHUNK_BYTES) + 2, `${served} chunks served after the restart`);
    process.stdout.write(`ota-resume: agent restarted with ${kept}/${a.size} bytes on disk; its first write ended at ${firstBytes}; ${served} chunks served after the restart\n`);
  } finally {
    await second.stop();
  }
});
