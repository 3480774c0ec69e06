/**
 * Ingest: `state` and `reported` updates were never limited, so a device flooding its state rewrote
 * its row in SQLite for every message. Now each is limited per device (ingest.perDeviceStateRate /
 * perDeviceStateBurst): past the burst only the newest waits, and is stored as soon as the device is
 * within its limit again; every update it replaced is dropped and counted (reason `rate`). Other
 * devices are not held up, and stop() leaves no timer behind. Real SQLite (in memory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { TelemetryStore } from '../../fleet-server/src/db/telemetry.js';
import { AlertStore } from '../../fleet-server/src/db/alerts.js';
import { Ingest } from '../../fleet-server/src/ingest/ingest.js';
import { waitFor } from '../helpers/wait.js';

function setup(limit = { perDeviceStateRate: 5, perDeviceStateBurst: 5 }) {
  const db = openDatabase(':memory:');
  const devices = new DeviceStore(db);
  for (const id of ['flood-a', 'calm-b']) devices.add(id);
  const writes: Record<string, number> = {};
  for (const m of ['applyState', 'applyReported'] as const) {
    const orig = devices[m].bind(devices) as (...a: unknown[]) => unknown;
    (devices as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => { writes[`${m}:${a[0] as string}`] = (writes[`${m}:${a[0] as string}`] ?? 0) + 1; return orig(...a); };
  }
  const ingest = new Ingest({ devices, telemetry: new TelemetryStore(db), alerts: new AlertStore(db), registry: new Registry(), stateRateLimit: limit });
  const state = (id: string, ts: number) => ingest.handle(`ef/v1/dev/${id}/state`, Buffer.from(JSON.stringify({ v: 1, online: true, ts, agentVersion: `1.0.${ts}` })));
  const reported = (id: string, ts: number, version: string) => ingest.handle(`ef/v1/dev/${id}/reported`, Buffer.from(JSON.stringify({ v: 1, ts, models: { detector: version }, health: { status: 'ok', reasons: [] } })));
  return { db, devices, ingest, writes, state, reported, close: () => { ingest.stop(); db.close(); } };
}

test('a device flooding state is stored at its limit; the newest update is stored last; the rest are dropped and counted', async () => {
  const s = setup();
  try {
    for (let i = 1; i <= 1000; i++) s.state('flood-a', i);
    s.state('calm-b', 1);
    assert.equal(s.writes['applyState:flood-a'], 5, 'the burst goes to the database, not the flood');
    assert.equal(s.writes['applyState:calm-b'], 1, 'another device is not held up');
    assert.equal(s.devices.get('calm-b')?.agentVersion, '1.0.1');
    assert.equal(s.ingest.heldUpdates, 1, 'one update of the flooding device waits: its newest');
    await waitFor('the newest state stored', () => s.devices.get('flood-a')?.agentVersion === '1.0.1000', 10_000);
    assert.equal(s.writes['applyState:flood-a'], 6);
    assert.equal(s.ingest.heldUpdates, 0);
    const st = s.ingest.getStats();
    assert.equal(st.droppedBy['state:rate'], 994, 'every update in between is counted as dropped');
    assert.equal(st.received, 1001);
  } finally {
    s.close();
  }
});

test('reported has its own limit beside state; the report a rollout waits for is never the one dropped', async () => {
  const s = setup({ perDeviceStateRate: 5, perDeviceStateBurst: 2 });
  try {
    for (let i = 1; i <= 50; i++) s.state('flood-a', i);
    s.reported('flood-a', 1, '1.0.0');
    s.reported('flood-a', 2, '1.5.0');
    s.reported('flood-a', 3, '1.9.0');
    s.reported('flood-a', 4, '2.0.0'); // committed: the one that matters
    assert.equal(s.writes['applyReported:flood-a'], 2, 'its own burst: the state flood does not use it up');
    await waitFor('the newest report stored', () => (s.devices.get('flood-a')?.reported as { models?: Record<string, string> } | null)?.models?.detector === '2.0.0', 10_000);
    assert.equal(s.ingest.getStats().droppedBy['reported:rate'], 1);
  } finally {
    s.close();
  }
});

test('stop() drops what is held, with no timer left to write to a closed database', async () => {
  const s = setup({ perDeviceStateRate: 0.01, perDeviceStateBurst: 1 });
  s.state('flood-a', 1);
  s.state('flood-a', 2);
  assert.equal(s.ingest.heldUpdates, 1);
  s.close();
  s.ingest.stop(); // twice is safe
  assert.equal(s.ingest.heldUpdates, 0);
  s.state('flood-a', 3); // after stop: ignored, nothing scheduled
  assert.equal(s.ingest.heldUpdates, 0);
});

test('a malformed update past the limit is counted as malformed and does not take the place of the valid one waiting', async () => {
  const s = setup({ perDeviceStateRate: 5, perDeviceStateBurst: 1 });
  try {
    s.reported('flood-a', 1, '1.0.0');
    s.reported('flood-a', 2, '2.0.0'); // over the burst: waits for its turn
    s.ingest.handle('ef/v1/dev/flood-a/reported', Buffer.from('{"v":1,')); // then a broken one
    s.ingest.handle('ef/v1/dev/flood-a/reported', Buffer.from(JSON.stringify({ v: 1, ts: 'yesterday' })));
    const st = s.ingest.getStats();
    assert.equal(st.droppedBy['reported:json'], 1);
    assert.equal(st.droppedBy['reported:schema'], 1);
    assert.equal(st.droppedBy['reported:rate'] ?? 0, 0, 'the valid report was not replaced');
    await waitFor('the valid report stored', () => (s.devices.get('flood-a')?.reported as { models?: Record<string, string> } | null)?.models?.detector === '2.0.0', 10_000);
  } finally {
    s.close();
  }
});
