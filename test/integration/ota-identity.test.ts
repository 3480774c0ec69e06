/**
 * What a version means on the device: one model of the role. Another model published with the
 * version of one installed here is refused (it was taken for "already running" before), and a stop
 * during the health window keeps the committed version (it committed the new one on the few frames
 * seen before), and a server refusal of the moment (desired state moved on) is not held against it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
let factoryDir: string;
const stateDir = () => join(fleet.dir, 'agents', 'cam-id', 'state');

function ota(): OtaReport | undefined {
  return (fleet.server.devices.get('cam-id')?.reported as { ota?: OtaReport } | undefined)?.ota;
}

async function publish(name: string, version: string): Promise<void> {
  const dir = writeStandIn(join(fleet.dir, 'src', `${name}-${version}`), { name, version });
  await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir });
}

function desire(name: string, version: string, healthWindowMs = 300): void {
  const a = fleet.server.ota.registry.artifact(name, version, 'onnx-cpu')!;
  fleet.server.ota.desired.set('cam-id', 'detector', { version, manifest: a.manifest, signature: a.signature, healthWindowMs });
}

const reportFor = (version: string, phase: string, timeoutMs = 15_000) =>
  waitFor(`${version} ${phase}`, () => { const o = ota(); return o?.version === version && o.phase === phase ? o : undefined; }, timeoutMs);

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  dev = fleet.addDevice('cam-id');
  factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0' });
  agent = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', stateDir: stateDir(), gate: { minFrames: 5 } });
});

after(async () => {
  await agent?.stop();
  await fleet?.stop();
});

test('another model with the version of an installed one is refused (E_VERSION_CONFLICT); the installed one stays desirable', async () => {
  await publish('other', '1.0.0');
  desire('other', '1.0.0');
  const r = await reportFor('1.0.0', 'refused');
  assert.equal(r.code, 'E_VERSION_CONFLICT', r.reason);
  assert.match(r.reason ?? '', /other@1\.0\.0 has the version of standin@1\.0\.0/);
  assert.equal(agent.manager.runningVersion, '1.0.0');

  // Not the running one but installed (the factory model, after an update): refused the same way.
  await publish('standin', '1.1.0');
  desire('standin', '1.1.0');
  await reportFor('1.1.0', 'committed');
  desire('other', '1.0.0');
  assert.equal((await reportFor('1.0.0', 'refused')).code, 'E_VERSION_CONFLICT');
  assert.equal(agent.manager.runningVersion, '1.1.0');

  // The conflict is not remembered as a failure of the version: rolling back to standin@1.0.0 works.
  assert.deepEqual(agent.manager.store.failures(), {});
  await publish('standin', '1.0.0');
  desire('standin', '1.0.0');
  await reportFor('1.0.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.0.0');
  assert.equal(agent.frames.errors, 0);
});

test('an agent stopped during the health window keeps the committed version and tries the new one at its next start', async () => {
  await publish('standin', '1.2.0');
  desire('standin', '1.2.0', 60_000);
  await reportFor('1.2.0', 'health');
  await agent.stop();
  assert.deepEqual(JSON.parse(readFileSync(join(agent.manager.store.root, 'current.json'), 'utf8')).version, '1.0.0');
  assert.deepEqual(agent.manager.store.failures(), {}, 'a stop is not a failure of the version');

  agent = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', stateDir: stateDir(), gate: { minFrames: 5 } });
  assert.equal(agent.manager.runningVersion, '1.0.0');
  desire('standin', '1.2.0');
  await reportFor('1.2.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.2.0');
});

test('a download the server refuses for the moment (E_NOT_DESIRED) is not held against the version and is retried by itself', async () => {
  await agent.stop();
  await publish('standin', '1.3.0');
  const desired = fleet.server.ota.desired;
  const holds = desired.holds.bind(desired);
  let stubbed = false;
  agent = await startOtaAgent(fleet, dev, {
    factoryDir, factoryVersion: '1.0.0', stateDir: stateDir(), gate: { minFrames: 5 }, retryDelayMs: 300,
    // As if the operator rolled back while the device started its download: the server stops serving 1.3.0.
    atStep: (step, v) => { if (step === 'download' && v === '1.3.0' && !stubbed) { stubbed = true; desired.holds = () => false; } },
  });
  desire('standin', '1.3.0');
  const r = await reportFor('1.3.0', 'failed');
  assert.equal(r.code, 'E_NOT_DESIRED', r.reason);
  assert.deepEqual(agent.manager.store.failures(), {});
  // The server serves it again; no new desired message and no reconnect: the agent's retry timer picks it up.
  desired.holds = holds;
  await reportFor('1.3.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.3.0');
});

test('a refused artifact is remembered by name and version: another model later published under that version installs', async () => {
  await publish('other', '1.4.0');
  await publish('standin', '1.4.1');
  const a = fleet.server.ota.registry.artifact('other', '1.4.0', 'onnx-cpu')!;
  const wrong = fleet.server.ota.registry.artifact('standin', '1.4.1', 'onnx-cpu')!.signature;
  fleet.server.ota.desired.set('cam-id', 'detector', { version: '1.4.0', manifest: a.manifest, signature: wrong, healthWindowMs: 300 });
  assert.equal((await reportFor('1.4.0', 'refused')).code, 'E_SIGNATURE');
  assert.deepEqual(Object.keys(agent.manager.store.failures()), ['other@1.4.0']);
  // standin@1.4.0 is another artifact: it installs (it was refused "not retried" when failures were keyed by version).
  await publish('standin', '1.4.0');
  desire('standin', '1.4.0');
  await reportFor('1.4.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.4.0');
});
