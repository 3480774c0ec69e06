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

/** How long a call to the fleet server's API may take before the command gives up (ms). */
export const API_TIMEOUT_MS = 30_000;

export async function callApi(server: string, token: string | undefined, method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
  const t = token ?? process.env.EF_TOKEN;
  if (!t) throw new EdgeFleetError('E_USAGE', 'Expected an operator token with --server: pass --token or set EF_TOKEN (from POST /api/login).');
  const url = new URL(path, server);
  const timeoutMs = opts.timeoutMs ?? API_TIMEOUT_MS;
  let res: Response;
  try {
    res = await fetch(url, {
      method, headers: { authorization: `Bearer ${t}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    // fetch says only 'fetch failed'; the reason is in its cause (undici: ECONNREFUSED, ENOTFOUND, ...).
    throw new EdgeFleetError('E_CONNECT', `Cannot reach the fleet server at ${url.origin} (--server ${server}) for ${method} ${url.pathname}: ${unreachableCause(err, timeoutMs)}; is it running there? Name its HTTP API with --server URL.`);
  }
  const text = await res.text();
  let json: { error?: { code: string; message: string } };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new EdgeFleetError('E_API', `${method} ${path} answered HTTP ${res.status} with no JSON (${JSON.stringify(text.slice(0, 80))}); is ${server} (--server) the fleet server's HTTP API?`);
  }
  if (!res.ok) throw new EdgeFleetError(json.error?.code ?? 'E_API', `${method} ${path} failed with HTTP ${res.status}: ${json.error?.message ?? 'no message'}`);
  return json;
}

function unreachableCause(err: unknown, timeoutMs: number): string {
  if ((err as Error).name === 'TimeoutError') return `no answer within ${timeoutMs} ms (timeout)`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const what: Record<string, string> = {
    ECONNREFUSED: 'connection refused', ENOTFOUND: 'host not found', EAI_AGAIN: 'host name lookup failed',
    ECONNRESET: 'connection reset', ETIMEDOUT: 'connection timed out', EHOSTUNREACH: 'host unreachable', UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  };
  if (cause?.code) return `${what[cause.code] ?? cause.code} (${cause.message ?? cause.code})`;
  return cause?.message ?? (err as Error).message;
}
