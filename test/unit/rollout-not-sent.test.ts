/**
 * Rollout engine: a device whose wave a rollout never reached ends `not-sent` when the rollout ends
 * (aborted, paused by its gate then aborted or rolled back), never `pending` for good; an operator's
 * pause keeps it pending (resume sends it). The status totals and fleetctl's rendering say so, and a
 * database from before keeps no pending row in an ended rollout either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withRolloutFleet, type RolloutFleet } from '../helpers/rollout-fleet.js';
import { renderStatus } from '../../fleet-server/src/cli/rollout-client.js';
import { migrateOta } from '../../fleet-server/src/registry/schema.js';

const spec = { model: 'm', version: '2.0.0', target: 'all', waves: [25, 100], gate: { maxFailures: 0, waveTimeoutMs: 60_000 } };

function laterWave(s: RolloutFleet, id: string) {
  return s.engine.status(id).devices.filter((d) => d.wave === 1);
}

function gatePaused(s: RolloutFleet): string {
  const { rollout } = s.engine.create(spec);
  s.report('d00', '1.0.0', { phase: 'rolled-back', version: '2.0.0', code: 'E_HEALTH', reason: 'output sanity' });
  s.engine.tick();
  assert.equal(s.engine.status(rollout.id).state, 'paused');
  return rollout.id;
}

test('abort of a running rollout: the devices of the waves it never reached end not-sent, and status shows them', async () => {
  await withRolloutFleet(4, (s) => {
    const { rollout } = s.engine.create(spec);
    assert.equal(laterWave(s, rollout.id).length, 3);
    assert.ok(laterWave(s, rollout.id).every((d) => d.status === 'pending'));
    s.engine.abort(rollout.id);
    const st = s.engine.status(rollout.id);
    for (const d of laterWave(s, rollout.id)) {
      assert.equal(d.status, 'not-sent', d.deviceId);
      assert.match(d.reason ?? '', /never sent: the rollout was aborted before its wave/);
      assert.equal(s.desired.get(d.deviceId).detector, undefined, 'never sent anything');
    }
    assert.equal(st.totals.pending, 0);
    assert.equal(st.totals.notSent, 3);
    const text = renderStatus(st);
    assert.match(text, /never sent 3/);
    assert.match(text, /d03 +2 +not-sent /);
    // A later tick (the finished rollouts are still looked at) leaves them as they are.
    s.advance(120_000);
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).totals.notSent, 3);
  });
});

test('paused by its gate, then aborted or rolled back: the later waves end not-sent', async () => {
  for (const end of ['abort', 'rollback'] as const) {
    await withRolloutFleet(4, (s) => {
      const id = gatePaused(s);
      assert.ok(laterWave(s, id).every((d) => d.status === 'pending'), 'paused: still pending');
      s.engine[end](id);
      const st = s.engine.status(id);
      assert.equal(st.totals.pending, 0, end);
      assert.equal(st.totals.notSent, 3, end);
      const word = end === 'abort' ? 'aborted' : 'rolled back';
      for (const d of laterWave(s, id)) assert.match(d.reason ?? '', new RegExp(`never sent: the rollout was ${word}`));
      assert.equal(st.devices.find((d) => d.deviceId === 'd00')?.status, 'failed', 'the canary keeps its outcome');
    });
  }
});

test('an operator pause keeps the later waves pending, and resume sends them', async () => {
  await withRolloutFleet(4, (s) => {
    const { rollout } = s.engine.create(spec);
    s.engine.pause(rollout.id);
    assert.equal(s.engine.status(rollout.id).totals.pending, 3);
    s.engine.resume(rollout.id);
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    assert.equal(s.engine.status(rollout.id).totals.pending, 0);
    assert.equal(s.engine.status(rollout.id).totals.assigned, 3);
    assert.equal(s.engine.status(rollout.id).totals.notSent, 0);
  });
});

test('a database from before not-sent: the pending rows of rollouts that ended end not-sent at the migration, a running one keeps them', async () => {
  await withRolloutFleet(4, (s) => {
    const aborted = s.engine.create(spec).rollout.id;
    s.engine.abort(aborted);
    const running = s.engine.create({ ...spec, waves: [50, 100] }).rollout.id;
    // As an older server left it: the ended rollout's rows pending, and the OTA schema one step back.
    s.db.prepare("UPDATE rollout_devices SET status = 'pending', reason = NULL WHERE status = 'not-sent'").run();
    const { version } = s.db.prepare('SELECT version FROM ota_schema_version').get() as { version: number };
    s.db.prepare('UPDATE ota_schema_version SET version = ?').run(version - 1);
    assert.equal(s.engine.status(aborted).totals.pending, 3);
    migrateOta(s.db);
    assert.equal(s.engine.status(aborted).totals.pending, 0);
    assert.equal(s.engine.status(aborted).totals.notSent, 3);
    assert.match(laterWave(s, aborted)[0].reason ?? '', /^never sent: the rollout was aborted before its wave$/);
    assert.equal(s.engine.status(running).totals.pending, 2, 'a running rollout keeps its pending devices');
  });
});
