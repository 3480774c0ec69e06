/**
 * Model updates through a real fleet server (registry, desired state, MQTT chunks): the agent keeps the
 * running version, the previous one and the 3 newest committed on disk and deletes the older ones, so
 * weekly updates no longer fill the box's disk. A rollback to a deleted version (known good: committed
 * here before) downloads it again with the signed manifest the server sends, verifies it (signature,
 * sha256) and switches to it without the comparative health window.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet, type TestFleet, type TestDevice } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { startOtaAgent, type OtaTestAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';

let fleet: TestFleet;
let dev: TestDevice;
let agent: OtaTestAgent;
/** `step version` of every install step the agent ran. */
const steps: string[] = [];

function ota(): OtaReport | undefined {
  return (fleet.server.devices.get('cam-prune')?.reported as { ota?: OtaReport } | undefined)?.ota;
}

/** As a rollout sets it, forward or back (rollout-engine entryFor): with the signed manifest the registry holds. */
function desire(version: string): void {
  const a = fleet.server.ota.registry.artifact('standin', version, 'onnx-cpu');
  assert.ok(a, `standin@${version} is published`);
  fleet.server.ota.desired.set('cam-prune', 'detector', { version, manifest: a.manifest, signature: a.signature, rollout: 'ro-test', healthWindowMs: 300 });
}

const reportFor = (version: string, phase: string, timeoutMs = 20_000) =>
  waitFor(`${version} ${phase}`, () => { const o = ota(); return o?.version === version && o.phase === phase ? o : undefined; }, timeoutMs);

const onDisk = (sub: 'versions' | 'downloads') =>
  readdirSync(join(agent.manager.store.root, sub)).filter((n) => !n.startsWith('.')).sort();

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  dev = fleet.addDevice('cam-prune');
  for (const version of ['2.0.0', '3.0.0', '4.0.0', '5.0.0']) {
    const dir = writeStandIn(join(fleet.dir, 'src', version), { name: 'standin', version, kind: 'good' });
    await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir });
  }
  const factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0', kind: 'good' });
  agent = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', gate: { minFrames: 3 }, atStep: (step, v) => { steps.push(`${step} ${v}`); } });
});

after(async () => {
  await agent?.stop();
  await fleet?.stop();
});

test('four updates leave the 3 newest versions on disk; a rollback to the deleted one downloads it again and switches without a health window', async () => {
  const kept: string[][] = [];
  for (const v of ['2.0.0', '3.0.0', '4.0.0', '5.0.0']) {
    desire(v);
    await reportFor(v, 'committed');
    await agent.manager.idle();
    kept.push(onDisk('versions'));
  }
  assert.deepEqual(kept, [['2.0.0'], ['2.0.0', '3.0.0'], ['2.0.0', '3.0.0', '4.0.0'], ['3.0.0', '4.0.0', '5.0.0']]);
  assert.deepEqual(onDisk('downloads'), []);

  // The rollout that brought 2.0.0 is rolled back from 5.0.0: the server sends 2.0.0 with its manifest.
  const from = steps.length;
  desire('2.0.0');
  const r = await reportFor('2.0.0', 'committed');
  assert.equal(agent.manager.runningVersion, '2.0.0');
  assert.deepEqual(steps.slice(from), ['download 2.0.0', 'verify 2.0.0', 'stage 2.0.0', 'load 2.0.0', 'self-test 2.0.0', 'swap 2.0.0', 'commit 2.0.0', 'committed 2.0.0'],
    'downloaded and verified again, then switched: no health step');
  assert.equal(r.health, undefined, 'no comparative health window');
  assert.match(r.reason ?? '', /2\.0\.0 was committed here before: verified, loaded and self-tested, switched from 5\.0\.0 without a health window/);
  assert.deepEqual(agent.manager.store.failures(), {});
  await agent.manager.idle();
  // Running 2.0.0, previous 5.0.0 (where a rollback of the rollback goes), and 4.0.0 among the 3 newest committed.
  assert.deepEqual(onDisk('versions'), ['2.0.0', '4.0.0', '5.0.0']);
  assert.equal(agent.frames.errors, 0);
});
