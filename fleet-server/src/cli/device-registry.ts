/** Shared by the `fleetctl device ...` commands (not a command itself: it exports no `command`). */
import { dbPathOf, loadFleetConfig } from '../config/schema.js';
import { openDatabase } from '../db/database.js';
import { DeviceStore } from '../db/devices.js';
import { syncConfiguredMosquitto } from '../mosquitto/sync-target.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';

export interface Registry {
  devices: DeviceStore;
  /** Rewrites mosquitto's files and reloads it when the config names them. */
  syncMosquitto(): void;
}

export function withRegistry<T>(where: { config?: string; dataDir?: string }, fn: (r: Registry) => T): T {
  const config = loadFleetConfig(where.config);
  if (where.dataDir) config.dataDir = where.dataDir;
  const db = openDatabase(dbPathOf(config));
  try {
    const devices = new DeviceStore(db);
    return fn({ devices, syncMosquitto: () => { syncConfiguredMosquitto(config, devices.credentials(), { guess: true }); } });
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
