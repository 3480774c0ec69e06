/**
 * Rollout engine: every device of a rollout ends in a status that says what it runs, whatever state
 * the rollout ended in (aborted, paused, completed, rolled back), on real SQLite (in memory) with
 * scripted device reports and a fake clock; and the engine says which rollouts it changed (the
 * dashboard's live `rollout` event).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { RolloutEngine } from '../../fleet-server/src/rollouts/rollout-engine.js';
import { pino } from 'pino';
import type { Db } from '../../fleet-server/src/db/database.js';
import { rolloutFleet, withRolloutFleet } from '../helpers/rollout-fleet.js';

const spec = { model: 'm', version: '2.0.0', target: 'all', waves: [100], gate: { maxFailures: 0, waveTimeoutMs: 60_000 } };

// Abort left a device in its health window (it runs the version, not committed yet) 'assigned' for
// good: an aborted rollout was never looked at again, whether the device then committed or rolled back.
test('abort: a device in its health window ends succeeded when it commits, failed when it rolls itself back, failed when it goes silent', async () => {
  await withRolloutFleet(3, async (s) => {
    const { rollout } = s.engine.create(spec);
    for (const id of s.ids) s.report(id, '2.0.0', { phase: 'health', version: '2.0.0' });
    s.engine.tick();
    s.engine.abort(rollout.id);
    const row = (id: string) => s.engine.status(rollout.id).devices.find((d) => d.deviceId === id);
    assert.equal(row('d00')?.status, 'assigned', 'still in its health window: no outcome yet');
    assert.match(row('d00')?.reason ?? '', /health window when aborted/);

    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.report('d01', '1.0.0', { phase: 'rolled-back', version: '2.0.0', code: 'E_HEALTH', reason: 'output sanity' });
    s.advance(1000);
    s.engine.tick();
    assert.equal(row('d00')?.status, 'succeeded', 'committed: runs 2.0.0');
    assert.equal(row('d01')?.status, 'failed', 'rolled itself back: runs 1.0.0');
    assert.match(row('d01')?.reason ?? '', /rolled-back: E_HEALTH output sanity/);
    assert.equal(row('d02')?.status, 'assigned');

    s.advance(60_000); // d02 went silent in its window
    s.engine.tick();
    assert.equal(row('d02')?.status, 'failed');
    assert.match(row('d02')?.reason ?? '', /timeout: no healthy report within 60000 ms \(last phase health\)/);
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'aborted');
    assert.equal(st.totals.assigned, 0, 'no device left installing in an aborted rollout');
    assert.equal(s.desired.get('d00').detector?.version, '2.0.0', 'abort keeps what it runs');
  });
});

test('abort: the time no fleet server drove the rollouts does not count against a device left in its health window', async () => {
  await withRolloutFleet(1, async (s) => {
    const { rollout } = s.engine.create(spec);
    s.report('d00', '2.0.0', { phase: 'health', version: '2.0.0' });
    s.engine.abort(rollout.id);
    s.engine.start(3_600_000);
    s.engine.stop();
    s.advance(50_000); // the server is down
    const next = new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now });
    next.start(3_600_000);
    try {
      s.advance(20_000); // 70 s since the assignment, 20 s of them driven
      next.tick();
      assert.equal(next.status(rollout.id).devices[0].status, 'assigned');
      s.advance(41_000);
      next.tick();
      assert.equal(next.status(rollout.id).devices[0].status, 'failed');
    } finally {
      next.stop();
    }
  });
});

// A gate rollback to a previous version whose desired state is now over what an agent accepts (the
// device took on another role since) threw from the desired store: the rollout stayed running, and
// every tick tried the rollback again, logged an error and republished the devices before it.
test('a gate rollback refused as too large is recorded once on the device, which keeps what it runs, and not retried every tick', async () => {
  const s = await rolloutFleet(2);
  const logs: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as { level: number; msg: string }); } });
  const engine = new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now, logger });
  try {
    await s.publishModel('coco', '1.0.0', 1100);
    await s.publishModel('coco', '2.0.0');
    await s.publishModel('faces', '3.0.0', 1100);
    const coco = engine.create({ ...spec, model: 'coco' }).rollout;
    // d01 takes on a face model: it fits with the small coco 2.0.0, not with coco 1.0.0.
    engine.create({ model: 'faces', version: '3.0.0', role: 'face', target: 'devices:d01', waves: [100] });
    assert.equal(s.desired.get('d01').face?.version, '3.0.0');
    s.report('d01', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.report('d00', '1.0.0', { phase: 'rolled-back', version: '2.0.0', code: 'E_HEALTH', reason: 'output sanity' });
    engine.tick();
    const st = engine.status(coco.id);
    assert.equal(st.state, 'paused', st.reason ?? '');
    const row = (id: string) => st.devices.find((d) => d.deviceId === id);
    assert.equal(s.desired.get('d00').detector?.version, '1.0.0', 'the canary is rolled back');
    assert.equal(row('d01')?.status, 'failed');
    assert.match(row('d01')?.reason ?? '', /not rolled back: The desired state of d01 with coco@1\.0\.0 .* over the 32768 an agent accepts.*desired detector is cleared: it keeps what it runs/);
    assert.equal(s.desired.get('d01').detector, undefined, 'cleared: it keeps what it runs');
    assert.equal(s.desired.get('d01').face?.version, '3.0.0', 'its other role untouched');

    const published = s.published.length;
    const logged = logs.length;
    engine.tick();
    engine.tick();
    assert.equal(s.published.length, published, 'nothing published again');
    assert.deepEqual(logs.slice(logged).filter((l) => l.level >= 40).map((l) => l.msg), [], 'nothing logged again');
    assert.equal(engine.status(coco.id).state, 'paused');
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// Failed devices were looked at again only in running and completed rollouts: in a rollout the
// operator paused, one back from offline that committed the version stayed failed (and counted
// against resume), and one that had never reported learned no previous version, so a rollback
// cleared its desired state and it kept the new version.
test('paused by the operator: a failed device back from offline learns its previous version, and succeeds once it commits', async () => {
  await withRolloutFleet(1, async (s) => {
    s.devices.add('late'); // never reported
    s.devices.add('x');
    s.report('x', '1.0.0', { phase: 'idle', version: '1.0.0' });
    const { rollout } = s.engine.create({ ...spec, target: 'devices:d00,late,x', waves: [50, 100], gate: { maxFailures: 1, waveTimeoutMs: 60_000 } });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000);
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).wave, 1, 'late failed within the gate; wave 2 started');
    s.engine.pause(rollout.id);
    const late = () => s.engine.status(rollout.id).devices.find((d) => d.deviceId === 'late');
    s.report('late', '1.0.0', { phase: 'downloading', version: '2.0.0' }); // back online
    s.engine.tick();
    assert.equal(late()?.previousVersion, '1.0.0');
    s.report('late', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(late()?.status, 'succeeded');
    assert.match(late()?.reason ?? '', /committed after it had failed \(timeout/);
    assert.equal(s.engine.status(rollout.id).state, 'paused', 'still paused: only the operator resumes');
    s.engine.rollback(rollout.id);
    assert.equal(s.desired.get('late').detector?.version, '1.0.0', 'sent back to what it ran, not cleared');
  });
});

test('aborted: a failed device that ran the version at the abort (so kept it) succeeds once it commits', async () => {
  await withRolloutFleet(4, async (s) => {
    const { rollout } = s.engine.create({ ...spec, waves: [50, 100], gate: { maxFailures: 1, waveTimeoutMs: 60_000 } });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000); // d01 silent: failed, within the gate
    s.engine.tick();
    s.report('d01', '2.0.0', { phase: 'health', version: '2.0.0' }); // back, installing late
    s.engine.tick();
    s.engine.abort(rollout.id);
    assert.equal(s.desired.get('d01').detector?.version, '2.0.0', 'it runs the version: it keeps it');
    s.report('d01', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.devices.find((d) => d.deviceId === 'd01')?.status, 'succeeded');
    assert.deepEqual([st.totals.succeeded, st.totals.failed, st.totals.rolledBack], [2, 0, 2]);
  });
});

test('paused by its gate or rolled back: a failed device seen on the version on its way back stays failed (its desired state is the version before)', async () => {
  await withRolloutFleet(2, async (s) => {
    const { rollout } = s.engine.create({ ...spec, waves: [50, 100] });
    s.advance(61_000); // d00 silent: the gate pauses and rolls it back
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).state, 'paused');
    assert.equal(s.desired.get('d00').detector?.version, '1.0.0');
    // It had installed 2.0.0 offline; it reports that before it follows its desired state back.
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).devices[0].status, 'failed');
    s.engine.rollback(rollout.id);
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).devices[0].status, 'failed');
  });
});

// The dashboard's event bus declared `rollout` events, but nothing published them: the Rollouts
// page learnt of a rollout's change only by polling.
test('onChange hears once per rollout of each tick or operator action that changed it, never of a tick that changed nothing', async () => {
  const s = await rolloutFleet(4);
  const changes: string[] = [];
  const engine = new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now, onChange: (id) => changes.push(id) });
  const take = () => changes.splice(0);
  try {
    const { rollout } = engine.create({ ...spec, waves: [50, 100] });
    assert.deepEqual(take(), [rollout.id], 'created, its first wave assigned: one event');
    assert.equal(engine.create({ ...spec, waves: [50, 100] }).created, false);
    assert.deepEqual(take(), [], 'the same spec again changes nothing');
    engine.tick();
    assert.deepEqual(take(), []);
    s.report('d00', '2.0.0', { phase: 'health', version: '2.0.0' });
    engine.tick();
    assert.deepEqual(take(), [], 'a report that settles no device: the device event covers it');
    for (const id of ['d00', 'd01']) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    engine.tick();
    assert.deepEqual(take(), [rollout.id], 'two devices succeeded and the next wave assigned: one event');
    engine.pause(rollout.id);
    assert.deepEqual(take(), [rollout.id]);
    engine.resume(rollout.id);
    assert.deepEqual(take(), [rollout.id]);
    s.advance(61_000); // wave 2 silent: the gate pauses and rolls back
    engine.tick();
    assert.equal(engine.status(rollout.id).state, 'paused');
    assert.deepEqual(take(), [rollout.id]);
    engine.rollback(rollout.id);
    assert.deepEqual(take(), [rollout.id]);
    assert.throws(() => engine.rollback(rollout.id), /already rolled back/);
    assert.deepEqual(take(), [], 'a refused action changed nothing');

    // A listener that throws is logged; the engine goes on.
    const failing = new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now, logger: pino({ level: 'silent' }), onChange: () => { throw new Error('listener down'); } });
    const next = failing.create({ ...spec, version: '1.0.0', waves: [100] }).rollout;
    assert.equal(failing.abort(next.id).state, 'aborted');
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

/** Counts the SQL statements run on `db` (every store prepares its statement at each call). */
function countStatements(db: Db): { count: () => number } {
  let n = 0;
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const st = prepare(sql);
    for (const m of ['run', 'get', 'all', 'iterate'] as const) {
      const f = st[m].bind(st) as (...a: unknown[]) => unknown;
      (st as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => { n += 1; return f(...a); };
    }
    return st;
  }) as Db['prepare'];
  return { count: () => n };
}

// Each tick read the failed rows of every finished rollout, and each aborted one's assigned rows, one
// query per rollout and more per failed device: a year of rollouts was hundreds of queries a second.
test('a tick does the same work after 2 or 40 finished rollouts whose failed devices run the version before', async () => {
  await withRolloutFleet(2, async (s) => {
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    const stmts = countStatements(s.db);
    const perTick = () => { const before = stmts.count(); s.engine.tick(); return stmts.count() - before; };
    const finish = (i: number) => {
      // d01 stays on 1.0.0: failed (timeout) within the gate, completed; every other one aborted before.
      const { rollout } = s.engine.create({ ...spec, gate: { maxFailures: 1, waveTimeoutMs: 60_000 + i } });
      if (i % 2 === 0) return s.engine.abort(rollout.id);
      s.advance(70_000);
      s.engine.tick();
      return s.engine.status(rollout.id);
    };
    for (let i = 0; i < 2; i++) assert.match(finish(i).state, /^(completed|aborted)$/);
    const few = perTick();
    for (let i = 2; i < 40; i++) assert.match(finish(i).state, /^(completed|aborted)$/);
    assert.equal(perTick(), few, 'statements in one tick, with 40 finished rollouts as with 2');

    // The device that failed them all commits the version its desired state names: every completed one learns it.
    s.report('d01', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    const rows = s.engine.list().map((r) => s.engine.status(r.id)).filter((st) => st.state === 'completed').map((st) => st.devices[1].status);
    assert.deepEqual(rows, Array(20).fill('succeeded'));
  });
});

// The time a rollout was paused counted against waveTimeoutMs: after an operator's pause longer than
// it (the broker down, say), every device still installing failed at resume, and the gate rolled
// the wave back; one left in its health window by an abort of the paused rollout failed at once.
test('the time a rollout was paused does not count against the devices installing, at resume or abort', async () => {
  await withRolloutFleet(3, async (s) => {
    const { rollout } = s.engine.create({ ...spec, target: 'devices:d00,d01' });
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.report('d01', '1.0.0', { phase: 'downloading', version: '2.0.0' });
    s.advance(30_000);
    s.engine.tick();
    s.engine.pause(rollout.id);
    s.advance(3_600_000);
    s.engine.resume(rollout.id);
    const d01 = () => s.engine.status(rollout.id).devices.find((d) => d.deviceId === 'd01');
    assert.equal(d01()?.status, 'assigned', '30 s of its 60 s used before the pause');
    assert.equal(s.engine.status(rollout.id).state, 'running');
    s.advance(29_000);
    s.engine.tick();
    assert.equal(d01()?.status, 'assigned');
    s.advance(2000);
    s.engine.tick();
    assert.equal(d01()?.status, 'failed', 'silent 61 s while the rollout ran');
    assert.match(d01()?.reason ?? '', /timeout: no healthy report within 60000 ms/);

    s.engine.rollback(rollout.id);
    const next = s.engine.create({ ...spec, target: 'devices:d02' }).rollout;
    s.report('d02', '2.0.0', { phase: 'health', version: '2.0.0' });
    s.advance(30_000);
    s.engine.tick();
    s.engine.pause(next.id);
    s.advance(3_600_000);
    s.engine.abort(next.id);
    const d02 = () => s.engine.status(next.id).devices[0];
    assert.equal(d02().status, 'assigned', 'in its health window when aborted');
    s.advance(29_000);
    s.engine.tick();
    assert.equal(d02().status, 'assigned');
    s.advance(2000);
    s.engine.tick();
    assert.equal(d02().status, 'failed');
  });
});
