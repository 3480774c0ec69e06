/**
 * Going back to a version the device committed before (a rollout rollback, or a return to the
 * factory model) is not a trial: that version already proved itself here. It is verified, loaded
 * and run once, then committed without the health window, so an older model that is slower than
 * the one it replaces (or finds less) is not refused by comparison with it, and it is never
 * remembered as failed. The agent refused such rollbacks (E_HEALTH "latency ... is 9×") and kept the
 * new model while the server showed the device rolled back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet, type TestFleet, type TestDevice } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn, type StandInKind } from '../helpers/ota-models.js';
import { startOtaAgent, type OtaTestAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';

let fleet: TestFleet;
let dev: TestDevice;
let agent: OtaTestAgent;

function ota(): OtaReport | undefined {
  return (fleet.server.devices.get('cam-rb')?.reported as { ota?: OtaReport } | undefined)?.ota;
}

async function publish(version: string, kind: StandInKind): Promise<void> {
  // The slow stand-in runs 96 768×768 MatMuls per frame: milliseconds, against microseconds for the good one.
  const dir = writeStandIn(join(fleet.dir, 'src', version), { name: 'standin', version, kind });
  await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir });
}

/** As a rollout sets it: with the signed manifest going forward, the bare version going back. */
function desire(version: string, opts: { manifest?: boolean } = {}): void {
  const a = fleet.server.ota.registry.artifact('standin', version, 'onnx-cpu');
  const signed = (opts.manifest ?? true) && a ? { manifest: a.manifest, signature: a.signature } : {};
  fleet.server.ota.desired.set('cam-rb', 'detector', { version, ...signed, rollout: 'ro-test', healthWindowMs: 500 });
}

const reportFor = (version: string, phase: string, timeoutMs = 20_000) =>
  waitFor(`${version} ${phase}`, () => { const o = ota(); return o?.version === version && o.phase === phase ? o : undefined; }, timeoutMs);

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  dev = fleet.addDevice('cam-rb');
  const factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0', kind: 'slow' });
  agent = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', gate: { minFrames: 5 } });
});

after(async () => {
  await agent?.stop();
  await fleet?.stop();
});

test('a rollback to the slower factory model is committed without the health window and never remembered as failed', async () => {
  await publish('2.0.0', 'good');
  desire('2.0.0');
  await reportFor('2.0.0', 'committed');
  // Enough frames on 2.0.0 for a comparative window to see the factory model as many times slower.
  const answered = agent.frames.answered;
  await waitFor('frames on 2.0.0', () => agent.frames.answered > answered + 20);
  // A device that ran the older agent holds the refusal of its rollback in failed.json: it does not block it.
  agent.manager.store.markFailed(undefined, '1.0.0', 'E_HEALTH', 'health window failed, rolled back to 2.0.0: latency 1.958 ms is 9.134× the previous model\'s 0.214 ms (allowed 2×)');

  desire('1.0.0', { manifest: false });
  const r = await reportFor('1.0.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.0.0');
  assert.equal(r.health, undefined, 'no comparative health window');
  assert.match(r.reason ?? '', /1\.0\.0 is the factory model: .* without a health window/);
  assert.deepEqual(Object.keys(agent.manager.store.failures()), ['?@1.0.0'], 'nothing new recorded as failed');
  assert.equal(agent.frames.errors, 0);
});

test('a rollback to a slower OTA version committed before, and a return to the faster one, both switch without a trial', async () => {
  await publish('1.1.0', 'slow');
  desire('1.1.0');
  await reportFor('1.1.0', 'committed');
  // Forward to the fast 2.0.0 again: committed here before, so it too switches at once.
  desire('2.0.0');
  assert.match((await reportFor('2.0.0', 'committed')).reason ?? '', /2\.0\.0 was committed here before: .* without a health window/);
  const answered = agent.frames.answered;
  await waitFor('frames on 2.0.0', () => agent.frames.answered > answered + 20);

  desire('1.1.0', { manifest: false });
  await reportFor('1.1.0', 'committed');
  assert.equal(agent.manager.runningVersion, '1.1.0');
  assert.equal(fleet.server.devices.get('cam-rb')?.reported?.models?.detector, '1.1.0');
  assert.equal(agent.manager.store.failureOf(undefined, '1.1.0'), undefined);
  assert.equal(agent.manager.store.failureOf('standin', '1.1.0'), undefined);
  assert.equal(agent.frames.errors, 0);
});

test('going back still checks the file: a damaged copy of a version committed before is refused, not remembered as failed', async () => {
  desire('2.0.0');
  await reportFor('2.0.0', 'committed');
  writeFileSync(join(agent.manager.store.versionDir('1.1.0'), 'model.onnx'), 'damaged');
  desire('1.1.0', { manifest: false });
  const r = await reportFor('1.1.0', 'refused');
  assert.match(r.reason ?? '', /not installed here/, 'the damaged copy failed its sha256 check');
  assert.equal(agent.manager.runningVersion, '2.0.0');
  assert.equal(agent.manager.store.failureOf(undefined, '1.1.0'), undefined, 'a version that proved itself here is never recorded as failed');
  // With its signed manifest the version downloads again, and (known good) switches without a trial.
  desire('1.1.0');
  assert.match((await reportFor('1.1.0', 'committed')).reason ?? '', /1\.1\.0 was committed here before: .* without a health window/);
  assert.equal(agent.manager.runningVersion, '1.1.0');
});
