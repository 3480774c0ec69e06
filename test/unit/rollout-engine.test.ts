/**
 * Rollout engine on real SQLite (in memory) with scripted device reports: wave sizes, advancing only
 * on healthy waves, gate failures (report and timeout) pause and roll back, idempotent create,
 * operator pause/resume/abort/rollback, and the desired states it writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { RolloutStore } from '../../fleet-server/src/rollouts/rollout-store.js';
import { RolloutEngine } from '../../fleet-server/src/rollouts/rollout-engine.js';
import type { ReportedPayload } from '../../agent/src/protocol/index.js';
import { rolloutFleet, withRolloutFleet } from '../helpers/rollout-fleet.js';

const spec = { model: 'm', version: '2.0.0', target: 'all', waves: [10, 50, 100], gate: { maxFailures: 0, waveTimeoutMs: 60_000 } };

test('waves advance only when every device of the wave committed; create is idempotent', async () => {
  await withRolloutFleet(10, async (s) => {
    const { rollout, created } = s.engine.create(spec);
    assert.equal(created, true);
    assert.equal(s.engine.create(spec).created, false);
    assert.equal(s.engine.list().length, 1);
    assert.deepEqual(s.engine.status(rollout.id).waveSizes, [1, 4, 5]);
    assert.equal(s.desired.get('d00').detector?.version, '2.0.0');
    assert.equal(s.desired.get('d01').detector, undefined, 'wave 2 not assigned yet');
    s.report('d00', '2.0.0', { phase: 'health', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).wave, 0, 'still in its health window');
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).wave, 1);
    for (const id of s.ids.slice(1, 5)) assert.equal(s.desired.get(id).detector?.version, '2.0.0');
    for (const id of s.ids.slice(1)) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'completed');
    assert.equal(st.totals.succeeded, 10);
    assert.equal(st.totals.runningVersion, 10);
    assert.ok(s.published.every((p) => p.v === 1 && p.rev >= 1));
  });
});

test('a canary that rolls back pauses the rollout, rolls the wave back and blocks resume; rollback frees the role', async () => {
  await withRolloutFleet(10, async (s) => {
    const { rollout } = s.engine.create(spec);
    s.report('d00', '1.0.0', { phase: 'rolled-back', version: '2.0.0', code: 'E_HEALTH', reason: 'output sanity' });
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'paused');
    assert.match(st.reason ?? '', /wave 1: 1 device\(s\) failed the gate.*d00 rolled-back: E_HEALTH output sanity/);
    assert.equal(s.desired.get('d00').detector?.version, '1.0.0', 'desired back to the previous version');
    assert.ok(s.desired.get('d00').detector?.manifest, 'with its signed manifest');
    assert.equal(st.totals.pending, 9);
    assert.throws(() => s.engine.resume(rollout.id), /stopped by its gate/);
    assert.throws(() => s.engine.create({ ...spec, version: '1.0.0' }), /still paused/);
    assert.equal(s.engine.rollback(rollout.id).state, 'rolled-back');
    assert.equal(s.engine.create({ ...spec, version: '1.0.0', waves: [100] }).created, true);
  });
});

test('a silent device fails its wave after waveTimeoutMs; operator pause/resume/abort', async () => {
  await withRolloutFleet(4, async (s) => {
    const { rollout } = s.engine.create({ ...spec, waves: [50, 100] });
    s.engine.pause(rollout.id);
    assert.throws(() => s.engine.pause(rollout.id), /only a running rollout/);
    assert.equal(s.engine.resume(rollout.id).state, 'running');
    s.advance(61_000);
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'paused');
    assert.match(st.devices.find((d) => d.status === 'failed')?.reason ?? '', /timeout: no healthy report within 60000 ms/);
    assert.equal(s.engine.abort(rollout.id).state, 'aborted');
    assert.throws(() => s.engine.abort(rollout.id), /already aborted/);
    assert.throws(() => s.engine.create({ ...spec, version: '9.9.9' }), /No onnx-cpu artifact for m@9.9.9/);
    assert.throws(() => s.engine.create({ ...spec, waves: [50, 25] }), /ascending cumulative wave percentages/);
    assert.throws(() => s.engine.create({ ...spec, target: 'devices:d00,nope' }), /Unknown device\(s\) in target: nope/);
    // A device named twice is in the rollout once (it was a UNIQUE constraint failure, a 500).
    const twice = s.engine.create({ ...spec, target: 'devices:d02,d02' });
    assert.deepEqual(s.engine.status(twice.rollout.id).devices.map((d) => d.deviceId), ['d02']);
    s.engine.abort(twice.rollout.id);
    // Groups: only members are in the rollout.
    const store = new RolloutStore(s.db, () => s.now());
    store.setGroups('d01', ['lobby']);
    store.setGroups('d03', ['lobby', 'dock', 'lobby']);
    assert.deepEqual(store.groupsOf('d03'), ['dock', 'lobby'], 'a group given twice is stored once');
    const g = s.engine.create({ ...spec, target: 'group:lobby', waves: [50, 100] });
    assert.deepEqual(s.engine.status(g.rollout.id).devices.map((d) => d.deviceId), ['d01', 'd03']);
    assert.throws(() => s.engine.create({ ...spec, target: 'group:nobody' }), /matches no registered device/);
  });
});

test('one engine drives rollouts when replicas share the database: a lease, taken over after it expires', async () => {
  await withRolloutFleet(1, async (s) => {
    const store = new RolloutStore(s.db, () => s.now());
    assert.equal(store.acquireLease('replica-a', 5000), true);
    assert.equal(store.acquireLease('replica-b', 5000), false);
    assert.equal(store.acquireLease('replica-a', 5000), true, 'the holder renews');
    s.advance(6000);
    assert.equal(store.acquireLease('replica-b', 5000), true, 'expired: another replica takes over');
    store.releaseLease('replica-b');
    assert.equal(store.acquireLease('replica-a', 5000), true);
  });
});

test('a transient failure waits for waveTimeoutMs; the same spec after an abort runs again; rollback never undoes a later rollout', async () => {
  await withRolloutFleet(2, async (s) => {
    const one = { ...spec, waves: [100] };
    const first = s.engine.create(one).rollout;
    // A stalled transfer: the agent retries on reconnect, so it is not a gate failure yet.
    s.report('d00', '1.0.0', { phase: 'failed', version: '2.0.0', code: 'E_TRANSFER_STALLED', reason: 'no chunk for 30 s' });
    s.engine.tick();
    assert.equal(s.engine.status(first.id).state, 'running');
    assert.equal(s.engine.status(first.id).devices[0].status, 'assigned');
    s.advance(61_000);
    s.engine.tick();
    const paused = s.engine.status(first.id);
    assert.equal(paused.state, 'paused');
    assert.match(paused.devices[0].reason ?? '', /timeout: .*last phase failed: E_TRANSFER_STALLED no chunk/);

    // Aborted, then created again with the same spec: a new attempt, not the aborted one handed back.
    s.engine.abort(first.id);
    const again = s.engine.create(one);
    assert.equal(again.created, true);
    assert.notEqual(again.rollout.id, first.id);
    assert.equal(again.rollout.state, 'running');
    assert.equal(s.engine.create(one).created, false, 'a retried create still does not double it');
    for (const id of s.ids) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(again.rollout.id).state, 'completed');

    // A later rollout of the role (back to 1.0.0) completes; rolling back the earlier one would undo it unseen.
    const later = s.engine.create({ ...one, version: '1.0.0' }).rollout;
    for (const id of s.ids) s.report(id, '1.0.0', { phase: 'committed', version: '1.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(later.id).state, 'completed');
    assert.throws(() => s.engine.rollback(again.rollout.id), new RegExp(`${later.id} \\(m@1\\.0\\.0, completed\\) came after ${again.rollout.id}.*roll it back first`));
    assert.equal(s.engine.rollback(later.id).state, 'rolled-back');
    assert.equal(s.desired.get('d00').detector?.version, '2.0.0', 'back to what it ran before the later rollout');
    assert.equal(s.engine.rollback(again.rollout.id).state, 'rolled-back');
    assert.throws(() => s.engine.rollback(again.rollout.id), /already rolled back/);
  });
});

test('a device that had never reported when assigned is rolled back to the version its first report named', async () => {
  await withRolloutFleet(1, async (s) => {
    s.devices.add('late');
    const { rollout } = s.engine.create({ ...spec, target: 'devices:late', waves: [100] });
    assert.equal(s.engine.status(rollout.id).devices[0].previousVersion, null);
    // It comes online and starts the download: its report still names what it runs.
    s.report('late', '1.0.0', { phase: 'downloading', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).devices[0].previousVersion, '1.0.0');
    s.engine.rollback(rollout.id);
    assert.equal(s.desired.get('late').detector?.version, '1.0.0');
    assert.match(s.engine.status(rollout.id).devices[0].reason ?? '', /back to 1\.0\.0/);
  });
});

// An agent drops a desired message over 32 KiB: a rollout that sent one waited on devices that never
// heard of it (one warning line on each device, nothing on the server).
test('a desired state over what an agent accepts is refused: at publish for one manifest, at rollout creation with the device\'s other roles', async () => {
  await withRolloutFleet(2, async (s) => {
    const registry = new ModelRegistry(s.db, s.dir, Date.now);
    const key = s.key;
    const manifest = (name: string, labels: number) => ({ name, version: '1.0.0', target: 'onnx-cpu' as const, precision: 'fp32' as const, inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: Array.from({ length: labels }, (_v, i) => `label-number-${i}`), metrics: {} });
    writeFileSync(join(s.dir, 'big.onnx'), 'big');
    await assert.rejects(registry.addArtifact({ file: join(s.dir, 'big.onnx'), manifest: manifest('huge', 3000) }, key.privateKey), /desired message of \d+ bytes, over the 32768 an agent accepts \(3000 labels/);
    assert.equal(registry.artifact('huge', '1.0.0', 'onnx-cpu'), undefined, 'nothing published');
    // Two models that each fit, but not together on one device.
    await registry.addArtifact({ file: join(s.dir, 'big.onnx'), manifest: manifest('faces', 1100) }, key.privateKey);
    await registry.addArtifact({ file: join(s.dir, 'big.onnx'), manifest: manifest('coco', 1100) }, key.privateKey);
    const faces = s.engine.create({ model: 'faces', version: '1.0.0', role: 'face', target: 'devices:d00', waves: [100] });
    assert.equal(s.desired.get('d00').face?.version, '1.0.0', JSON.stringify(faces.rollout));
    const before = s.published.length;
    assert.throws(() => s.engine.create({ model: 'coco', version: '1.0.0', role: 'detector', target: 'all', waves: [100] }), /desired state of d00 .* would be \d+ bytes, over the 32768 an agent accepts/);
    assert.equal(s.engine.list().length, 1, 'no rollout created');
    assert.equal(s.published.length, before, 'nothing published');
    assert.equal(s.desired.get('d01').detector, undefined);
  });
});

// A rollback entry (version only, no manifest) matched any model name at that version: the device
// could fetch another model's artifact that happened to share the version number.
test('a device may fetch only the model its desired state names, with its manifest', async () => {
  await withRolloutFleet(1, async (s) => {
    s.desired.set('d00', 'detector', { version: '1.0.0', rollout: 'r1' });
    assert.equal(s.desired.holds('d00', 'other-model', '1.0.0'), false);
    const { rollout } = s.engine.create(spec);
    assert.equal(s.desired.get('d00').detector?.version, '2.0.0', rollout.id);
    assert.equal(s.desired.holds('d00', 'm', '2.0.0'), true);
    assert.equal(s.desired.holds('d00', 'other-model', '2.0.0'), false);
  });
});

// maxFailures 1: the wave waited for every device to succeed, so the one failure it allowed stalled
// the rollout for good; and the failed device that installed later stayed failed.
test('a failure within maxFailures does not hold the wave; a failed device that commits later succeeded after all', async () => {
  await withRolloutFleet(4, async (s) => {
    const { rollout } = s.engine.create({ ...spec, waves: [50, 100], gate: { maxFailures: 1, waveTimeoutMs: 60_000 } });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000); // d01 is offline: it times out
    s.engine.tick();
    let st = s.engine.status(rollout.id);
    assert.equal(st.devices.find((d) => d.deviceId === 'd01')?.status, 'failed');
    assert.equal(st.state, 'running');
    assert.equal(st.wave, 1, 'wave 2 started: the failure is within the gate');
    assert.equal(s.desired.get('d02').detector?.version, '2.0.0');
    // d01 comes back and installs the version its desired state still names.
    s.report('d01', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    st = s.engine.status(rollout.id);
    assert.equal(st.devices.find((d) => d.deviceId === 'd01')?.status, 'succeeded');
    assert.match(st.devices.find((d) => d.deviceId === 'd01')?.reason ?? '', /committed after it had failed \(timeout/);
    // The last wave: d03 times out as well, d02 commits; with d01 succeeded, one failure is allowed.
    s.report('d02', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000);
    s.engine.tick();
    st = s.engine.status(rollout.id);
    assert.equal(st.state, 'completed');
    assert.deepEqual([st.totals.succeeded, st.totals.failed], [3, 1]);
    // Completed without d03, which installs later: its row says so.
    s.report('d03', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    st = s.engine.status(rollout.id);
    assert.deepEqual([st.totals.succeeded, st.totals.failed], [4, 0]);
  });
});

// A fleet-server outage longer than what was left of waveTimeoutMs failed every device mid-install:
// the timeout ran from the assignment, through the time no server was there to hear the devices. And a
// server restarting more often than waveTimeoutMs must not hold a silent device for ever (restarting
// the timeout at each start did).
test('waveTimeoutMs does not count the time no fleet server drove the rollout, and a server that keeps restarting still times a silent device out', async () => {
  const s = await rolloutFleet(2);
  const engines: RolloutEngine[] = [];
  const restart = () => {
    engines.at(-1)?.stop();
    const e = new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now });
    e.start(3_600_000);
    engines.push(e);
    return e;
  };
  try {
    let engine = restart();
    const { rollout } = engine.create({ ...spec, waves: [100] });
    s.report('d00', '1.0.0', { phase: 'downloading', version: '2.0.0' });
    s.advance(50_000);
    engine.tick();
    s.advance(30_000); // the server is down; 80 s since the assignment, 50 s of them driven
    engine = restart();
    engine.tick();
    let st = engine.status(rollout.id);
    assert.equal(st.state, 'running', st.reason ?? '');
    assert.deepEqual(st.devices.map((d) => d.status), ['assigned', 'assigned']);
    s.advance(9_000); // 59 s driven
    engine.tick();
    assert.equal(engine.status(rollout.id).state, 'running');
    // Restarts every 5 s (a crash loop): each outage of 1 s does not count, the running time does.
    for (let i = 0; i < 2; i++) {
      s.advance(1_000);
      engine = restart();
      s.advance(4_000);
      engine.tick();
    }
    st = engine.status(rollout.id);
    assert.equal(st.state, 'paused', 'timed out after 60 s of driven time despite the restarts');
    assert.match(st.devices[0].reason ?? '', /timeout: no healthy report within 60000 ms \(last phase downloading\)/);
  } finally {
    engines.at(-1)?.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// Another role added to a device after the rollout was created: its desired state for the next wave
// was refused by a throw (after the row was marked assigned), which ended the tick for every later
// rollout, and the device then timed out on a version it was never sent.
test('a device whose desired state became too large fails at assignment, and the other rollouts still tick', async () => {
  await withRolloutFleet(2, async (s) => {
    await s.publishModel('coco', '3.0.0', 1100);
    await s.publishModel('faces', '3.0.0', 1100);
    const coco = s.engine.create({ model: 'coco', version: '3.0.0', target: 'all', waves: [50, 100], gate: { maxFailures: 0, waveTimeoutMs: 60_000 } }).rollout;
    // d01 (wave 2, not assigned yet) takes on a face model: each fits alone, not both.
    const faces = s.engine.create({ model: 'faces', version: '3.0.0', role: 'face', target: 'devices:d01', waves: [100] }).rollout;
    assert.equal(s.desired.get('d01').face?.version, '3.0.0');
    s.report('d00', '3.0.0', { phase: 'committed', version: '3.0.0' });
    s.devices.applyReported('d01', { v: 1, ts: s.now(), models: { detector: '1.0.0', face: '3.0.0' }, health: { status: 'ok', reasons: [] }, ota: { role: 'face', ts: s.now(), phase: 'committed', version: '3.0.0' } } as ReportedPayload);
    s.engine.tick();
    const st = s.engine.status(coco.id);
    const d01 = st.devices.find((d) => d.deviceId === 'd01');
    assert.equal(d01?.status, 'failed');
    assert.match(d01?.reason ?? '', /not assigned: The desired state of d01 .* over the 32768 an agent accepts/);
    assert.equal(st.state, 'paused', 'the gate (maxFailures 0) decides');
    assert.match(st.reason ?? '', /d01 not assigned/);
    assert.equal(s.desired.get('d01').detector, undefined, 'never sent the version, nor a rollback');
    assert.equal(s.desired.get('d00').detector?.version, '1.0.0', 'the wave is rolled back');
    assert.equal(s.engine.status(faces.id).state, 'completed', 'the rollout after it still ticked');
  });
});

// abort said "devices keep what they run", but a device offline or still downloading kept the new
// version in its desired state: it installed it later, and its row stayed assigned for good.
test('abort: a device that does not run the version yet is sent back to what it ran before; one that runs it keeps it', async () => {
  await withRolloutFleet(3, async (s) => {
    s.devices.add('late'); // never reported: no previous version known
    const { rollout } = s.engine.create({ ...spec, waves: [100] });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    s.report('d01', '2.0.0', { phase: 'health', version: '2.0.0' });
    s.report('d02', '1.0.0', { phase: 'downloading', version: '2.0.0' });
    assert.equal(s.engine.abort(rollout.id).state, 'aborted');
    const st = s.engine.status(rollout.id);
    const row = (id: string) => st.devices.find((d) => d.deviceId === id);
    assert.equal(s.desired.get('d00').detector?.version, '2.0.0', 'committed: keeps it');
    assert.equal(row('d00')?.status, 'succeeded');
    assert.equal(s.desired.get('d01').detector?.version, '2.0.0', 'runs it in its health window: keeps it');
    assert.equal(s.desired.get('d02').detector?.version, '1.0.0', 'downloading: back to what it ran');
    assert.ok(s.desired.get('d02').detector?.manifest, 'with its signed manifest');
    assert.equal(row('d02')?.status, 'rolled-back');
    assert.match(row('d02')?.reason ?? '', /aborted before it installed: back to 1\.0\.0/);
    assert.equal(s.desired.get('late').detector, undefined, 'no previous version known: desired cleared');
    assert.match(row('late')?.reason ?? '', /aborted before it installed: desired cleared/);
  });
});

// A device deleted mid-rollout (DELETE /api/devices/:id) kept its rollout row, desired state and
// groups: its wave waited on it until waveTimeoutMs, and the gate then rolled back the healthy devices.
test('a device removed from the fleet mid-rollout leaves it: the wave does not wait on it, its desired state and groups are cleared', async () => {
  const s = await rolloutFleet(5);
  s.engine.start(3_600_000); // subscribes to the device store's removals
  try {
    s.store.setGroups('d03', ['lobby']);
    const { rollout } = s.engine.create({ ...spec, waves: [20, 100] });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.desired.get('d03').detector?.version, '2.0.0', 'wave 2 assigned');
    const before = s.published.length;
    assert.equal(s.devices.remove('d03'), true);
    assert.deepEqual(s.desired.get('d03'), {});
    assert.deepEqual(s.published.slice(before).map((p) => p.models), [{}], 'an empty desired state replaces the retained one');
    assert.deepEqual(s.store.groupsOf('d03'), []);
    for (const id of ['d01', 'd02', 'd04']) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000);
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'completed', st.reason ?? '');
    assert.deepEqual([st.totals.devices, st.totals.succeeded, st.totals.failed], [4, 4, 0]);
    assert.equal(s.desired.get('d01').detector?.version, '2.0.0', 'the healthy devices keep the version');
  } finally {
    s.engine.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a device removed where the engine did not hear of it (another process) is dropped from its wave at the next tick', async () => {
  await withRolloutFleet(2, async (s) => {
    const { rollout } = s.engine.create({ ...spec, waves: [100] });
    s.devices.remove('d01'); // this engine is not started: not subscribed
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000);
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'completed', st.reason ?? '');
    assert.deepEqual(st.devices.map((d) => d.deviceId), ['d00']);
  });
});

test('a device offline from its assignment until it failed learns its previous version from its first report, for a rollback', async () => {
  await withRolloutFleet(1, async (s) => {
    s.devices.add('late'); // never reported
    const { rollout } = s.engine.create({ ...spec, target: 'devices:d00,late', waves: [100], gate: { maxFailures: 1, waveTimeoutMs: 60_000 } });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000);
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).state, 'completed');
    s.report('late', '1.0.0', { phase: 'downloading', version: '2.0.0' }); // back online
    s.engine.tick();
    const late = s.engine.status(rollout.id).devices.find((d) => d.deviceId === 'late');
    assert.equal(late?.status, 'failed');
    assert.equal(late?.previousVersion, '1.0.0');
    s.engine.rollback(rollout.id);
    assert.equal(s.desired.get('late').detector?.version, '1.0.0', 'back to what it ran, not cleared');
  });
});

test('republishing desired states (the server back on its broker) covers registered devices only', async () => {
  await withRolloutFleet(2, async (s) => {
    s.desired.set('d00', 'detector', { version: '1.0.0' });
    s.desired.set('d01', 'detector', { version: '1.0.0' });
    s.devices.remove('d01');
    s.published.length = 0;
    assert.equal(s.desired.republishAll(), 1);
    assert.equal(s.published.length, 1);
  });
});
