/** Shared by the `fleetctl device ...` commands (not a command itself: it exports no `command`). */
import { dbPathOf, loadFleetConfig } from '../config/schema.js';
import { openDatabase } from '../db/database.js';
import { DeviceStore } from '../db/devices.js';
import { OperatorStore } from '../db/operators.js';
import { syncConfiguredMosquitto } from '../mosquitto/sync-target.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EdgeFleetError, InputError } from '../../../agent/src/util/errors.js';

export interface Registry {
  devices: DeviceStore;
  operators: OperatorStore;
  /** Rewrites mosquitto's files and reloads it when the config names them. */
  syncMosquitto(): void;
}

/**
 * Opens the registry of the data dir (from --data-dir or the config). A data dir that does not exist
 * is a typo, not a new fleet: the device would go into a registry no server reads. `create`: a new
 * database may be made in an existing data dir (devices added before the server's first start);
 * without it (list), the database must exist.
 */
export function withRegistry<T>(where: { config?: string; dataDir?: string; create: boolean }, fn: (r: Registry) => T): T {
  const config = loadFleetConfig(where.config);
  if (where.dataDir) config.dataDir = where.dataDir;
  const dbPath = dbPathOf(config);
  const from = where.dataDir ? '--data-dir' : where.config ? `dataDir in ${where.config}` : 'the default dataDir (give --data-dir or --config)';
  if (!existsSync(config.dataDir)) {
    throw new InputError(`The fleet server's data dir ${resolve(config.dataDir)} (${from}) does not exist; name the server's (/var/lib/edge-fleet under systemd), or create it for a new fleet`);
  }
  if (!where.create && !existsSync(dbPath)) {
    throw new InputError(`No device registry at ${dbPath} (${from}); name the fleet server's data dir (/var/lib/edge-fleet under systemd)`);
  }
  const db = openDatabase(dbPath);
  try {
    const devices = new DeviceStore(db);
    return fn({ devices, operators: new OperatorStore(db), syncMosquitto: () => { syncConfiguredMosquitto(config, devices.credentials(), { guess: true }); } });
  } finally {
    db.close();
  }
}

export async function callApi(server: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<unknown> {
  const t = token ?? process.env.EF_TOKEN;
  if (!t) throw new EdgeFleetError('E_USAGE', 'Expected an operator token with --server: pass --token or set EF_TOKEN (from POST /api/login).');
  const res = await fetch(new URL(path, server), {
    method, headers: { authorization: `Bearer ${t}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json()) as { error?: { code: string; message: string } };
  if (!res.ok) throw new EdgeFleetError(json.error?.code ?? 'E_API', `${method} ${path} failed with HTTP ${res.status}: ${json.error?.message ?? 'no message'}`);
  return json;
}
