/**
 * The dashboard's device summary on real SQLite (in memory): the alert count is of the last 24 h
 * (counting every stored alert of each device grew with retention, on each call of a busy page).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { TelemetryStore } from '../../fleet-server/src/db/telemetry.js';
import { AlertStore } from '../../fleet-server/src/db/alerts.js';
import { FleetEventBus } from '../../fleet-server/src/dashboard/event-bus.js';
import { Dashboard } from '../../fleet-server/src/dashboard/dashboard.js';
import { alertFixture } from '../helpers/fleet.js';

test('device summaries count the alerts received in the last 24 h, per device', () => {
  let nowMs = Date.parse('2025-01-01T00:00:00Z');
  const clock = () => nowMs;
  const db = openDatabase(':memory:');
  const devices = new DeviceStore(db, clock);
  const alerts = new AlertStore(db, clock);
  for (const id of ['cam-a', 'cam-b', 'cam-c']) devices.add(id);
  const dash = new Dashboard({ bus: new FleetEventBus(), devices, telemetry: new TelemetryStore(db, clock), alerts });
  const counts = () => Object.fromEntries(dash.deviceSummaries().map((d) => [d.id, d.alertsLast24h]));
  assert.deepEqual(counts(), { 'cam-a': 0, 'cam-b': 0, 'cam-c': 0 });

  for (let i = 0; i < 3; i++) alerts.insert('cam-a', alertFixture(`old-a${i}`));
  alerts.insert('cam-b', alertFixture('old-b'));
  nowMs += 20 * 3600_000;
  alerts.insert('cam-a', alertFixture('new-a'));
  alerts.insert('cam-c', alertFixture('new-c'));
  assert.deepEqual(counts(), { 'cam-a': 4, 'cam-b': 1, 'cam-c': 1 }, 'all within 24 h');
  nowMs += 5 * 3600_000; // the first four are 25 h old now
  assert.deepEqual(counts(), { 'cam-a': 1, 'cam-b': 0, 'cam-c': 1 });
  nowMs += 24 * 3600_000;
  assert.deepEqual(counts(), { 'cam-a': 0, 'cam-b': 0, 'cam-c': 0 });
  db.close();
});
