/**
 * Rollout engine: what a device's report can and cannot do to rollouts, on real SQLite (in memory)
 * with scripted reports and a fake clock. One device's report never stops the other rollouts, and a
 * report counts a device succeeded only when it runs the model this rollout sent it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { decodePayload } from '../../agent/src/protocol/codec.js';
import { RolloutEngine } from '../../fleet-server/src/rollouts/rollout-engine.js';
import { withRolloutFleet, type RolloutFleet } from '../helpers/rollout-fleet.js';

const spec = { model: 'm', version: '2.0.0', target: 'all', waves: [100], gate: { maxFailures: 0, waveTimeoutMs: 60_000 } };

/** An engine on the fleet's stores whose log lines at warn and above are kept in `errors`. */
function loggedEngine(s: RolloutFleet): { engine: RolloutEngine; errors: string[] } {
  const errors: string[] = [];
  const logger = pino({ level: 'info' }, {
    write: (line: string) => {
      const l = JSON.parse(line) as { level: number; msg: string };
      if (l.level >= 40) errors.push(l.msg);
    },
  });
  return { engine: new RolloutEngine({ store: s.store, devices: s.devices, registry: s.registry, desired: s.desired, now: s.now, logger }), errors };
}

// The query that finds the finished rollouts' rows a report can change read every device's report
// with SQLite's JSON functions, which refuse JSON nested past 1000 levels ("malformed JSON"); the
// reported schema allows extra properties of any depth, so one device's 2.3 KB report made every
// tick throw before any running rollout advanced. Such payloads are now dropped at decode
// (agent/src/protocol/codec.ts MAX_PAYLOAD_DEPTH); the query still guards reports stored before.
test('a device report nested deeper than SQLite parses does not stop the rollouts', async () => {
  await withRolloutFleet(3, async (s) => {
    const { engine, errors } = loggedEngine(s);
    let nest: unknown = 1;
    for (let i = 0; i < 1100; i++) nest = [nest];
    const raw = JSON.stringify({ v: 1, ts: s.now(), models: { detector: '1.0.0' }, health: { status: 'ok', reasons: [] }, debug: nest });
    // The protocol now drops such a payload where it arrives (MAX_PAYLOAD_DEPTH) ...
    assert.equal(decodePayload('reported', raw).ok, false, 'a report nested past 32 levels is dropped at decode');
    // ... but one stored before that limit (a database from an older server) must not stop the rollouts either.
    s.devices.applyReported('d02', JSON.parse(raw) as Parameters<typeof s.devices.applyReported>[1]);

    const { rollout } = engine.create({ ...spec, target: 'devices:d00,d01' });
    assert.deepEqual(engine.status(rollout.id).devices.map((d) => d.status), ['assigned', 'assigned']);
    for (const id of ['d00', 'd01']) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(1000);
    engine.tick();
    assert.equal(engine.status(rollout.id).state, 'completed');
    assert.deepEqual(errors, []);
  });
});

// Settling the finished rollouts ran before the running ones advanced, outside their try/catch: any
// error there stopped every rollout, and was logged every second.
test('finished rollouts that cannot be settled do not stop the running ones, and their error is logged once', async () => {
  await withRolloutFleet(3, async (s) => {
    const { engine, errors } = loggedEngine(s);
    // d00 is in its health window when the first rollout is aborted: a finished rollout to settle.
    const first = engine.create({ ...spec, target: 'devices:d00' }).rollout;
    s.report('d00', '2.0.0', { phase: 'health', version: '2.0.0' });
    engine.abort(first.id);
    const next = engine.create({ ...spec, version: '1.0.0', target: 'devices:d01,d02' }).rollout;
    // The aborted one's record can no longer be read (written by another version of the server, say).
    s.db.prepare("UPDATE rollouts SET gate_json = '{' WHERE id = ?").run(first.id);
    for (let i = 0; i < 3; i++) {
      s.advance(1000);
      engine.tick();
    }
    for (const id of ['d01', 'd02']) s.report(id, '1.0.0', { phase: 'committed', version: '1.0.0' });
    s.advance(1000);
    engine.tick();
    assert.equal(engine.status(next.id).state, 'completed');
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /could not settle the finished rollouts; the running ones go on/);
  });
});

// Abort marked a failed device succeeded on its report alone: after the gate had rolled it back (its
// desired state the version before), one that committed the new version just before it read the
// rollback, on its way back, counted as succeeded, and stayed so once it ran the version before.
test('abort of a rollout its gate paused: a failed device on its way back stays failed', async () => {
  await withRolloutFleet(3, async (s) => {
    const { rollout } = s.engine.create(spec);
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.report('d01', '1.0.0', { phase: 'rolled-back', version: '2.0.0', code: 'E_HEALTH' });
    s.report('d02', '1.0.0', { phase: 'downloading', version: '2.0.0' });
    s.advance(61_000); // d01 rolled itself back, d02 timed out: the gate pauses and rolls back
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).state, 'paused');
    assert.equal(s.desired.get('d02').detector?.version, '1.0.0');
    s.report('d02', '2.0.0', { phase: 'committed', version: '2.0.0' }); // installed before it read the rollback
    s.engine.abort(rollout.id);
    const row = () => s.engine.status(rollout.id).devices.find((d) => d.deviceId === 'd02');
    assert.equal(row()?.status, 'failed');
    assert.equal(s.desired.get('d02').detector?.version, '1.0.0', 'still sent back');
    s.report('d02', '1.0.0', { phase: 'committed', version: '1.0.0' });
    s.advance(1000);
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(row()?.status, 'failed');
    assert.deepEqual([st.totals.succeeded, st.totals.failed, st.totals.rolledBack], [0, 2, 1]);
  });
});

// A failed row was re-checked on the version alone: a device that missed model m 2.0.0 and later
// installed model n 2.0.0 (another rollout of the role) counted as succeeded in m's rollout.
test('a failed device that installs another model with the same version number stays failed in the rollout it missed', async () => {
  await withRolloutFleet(3, async (s) => {
    await s.publishModel('n', '2.0.0');
    const m = s.engine.create({ ...spec, gate: { maxFailures: 1, waveTimeoutMs: 60_000 } }).rollout;
    for (const id of ['d00', 'd01']) s.report(id, '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(61_000); // d02 offline: failed, within the gate
    s.engine.tick();
    assert.equal(s.engine.status(m.id).state, 'completed');
    const n = s.engine.create({ ...spec, model: 'n', target: 'devices:d02' }).rollout;
    assert.equal(s.desired.get('d02').detector?.manifest?.name, 'n');
    s.report('d02', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.advance(1000);
    s.engine.tick();
    assert.equal(s.engine.status(n.id).state, 'completed');
    const row = s.engine.status(m.id).devices.find((d) => d.deviceId === 'd02');
    assert.equal(row?.status, 'failed', row?.reason ?? '');
    assert.match(row?.reason ?? '', /^timeout/);
    assert.deepEqual(s.store.unsettled().map((u) => `${u.rollout.id} ${u.device.deviceId}`), [], 'nothing left for later ticks to look at');
  });
});
