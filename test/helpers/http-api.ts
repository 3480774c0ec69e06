/**
 * The fleet server's HTTP API alone, on an in-memory SQLite database, with the options the tests
 * share (port 0, 1 h sessions, no public metrics, an empty status); `extra` adds or overrides options.
 * Not started: the caller starts it (some tests expect the start to fail).
 */
import { Registry } from 'prom-client';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { TelemetryStore } from '../../fleet-server/src/db/telemetry.js';
import { AlertStore } from '../../fleet-server/src/db/alerts.js';
import { OperatorStore } from '../../fleet-server/src/db/operators.js';
import { HttpApi, type HttpApiOptions } from '../../fleet-server/src/api/http-api.js';

export function testHttpApi(extra: Partial<HttpApiOptions> = {}) {
  const db = openDatabase(':memory:');
  const operators = new OperatorStore(db);
  const devices = new DeviceStore(db);
  const api = new HttpApi({
    host: '127.0.0.1', port: 0, devices, telemetry: new TelemetryStore(db), alerts: new AlertStore(db), operators,
    registry: new Registry(), sessionTtlMs: 3600_000, publicMetrics: false, status: () => ({}),
    ...extra,
  });
  return { db, operators, devices, api };
}
