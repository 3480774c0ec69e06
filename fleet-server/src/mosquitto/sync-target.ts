/**
 * Which mosquitto files a config asks the registry to keep in step, and how to reload that broker:
 * the managed one (broker.embedded.engine "mosquitto", files under <dataDir>/mosquitto, reloaded
 * only when the pid file names our running mosquitto) or an external one (the `mosquitto` section,
 * reloaded through its pid file). Used by the running server and by `fleetctl device add --config`.
 */
import { existsSync } from 'node:fs';
import type { FleetConfig } from '../config/schema.js';
import { livePid, managedMosquittoFiles, managedServiceSecret, SERVICE_USERNAME } from '../broker/managed-mosquitto.js';
import { syncMosquitto, type ServiceAccount } from './files.js';

/**
 * The config asks for the managed engine, or a server on this data directory ran one (its conf file
 * is there): `fleetctl device add --data-dir DIR` must then update its files too, since
 * `fleet-server serve --mqtt-engine mosquitto` may have chosen the engine on the command line.
 */
export function managedEngine(c: FleetConfig): boolean {
  return (c.broker.mode === 'embedded' && c.broker.embedded.engine === 'mosquitto') || existsSync(managedMosquittoFiles(c.dataDir).confFile);
}

/** The service account the fleet server uses at the broker whose files it writes. */
export function serviceAccounts(c: FleetConfig): ServiceAccount[] {
  if (managedEngine(c)) return [{ username: SERVICE_USERNAME, password: managedServiceSecret(managedMosquittoFiles(c.dataDir)) }];
  const x = c.broker.external;
  return x ? [{ username: x.username, password: x.password }] : [];
}

/**
 * Rewrites the password and ACL files from `devices` and reloads the broker. Returns false when
 * the config names no mosquitto files; true when the files were written (reloaded or not running).
 */
export function syncConfiguredMosquitto(c: FleetConfig, devices: { id: string; secretHash: string }[]): boolean {
  if (managedEngine(c)) {
    const f = managedMosquittoFiles(c.dataDir);
    syncMosquitto({ passwordFile: f.passwordFile, aclFile: f.aclFile }, devices, serviceAccounts(c));
    const pid = livePid(f);
    if (pid !== undefined) process.kill(pid, 'SIGHUP');
    return true;
  }
  if (!c.mosquitto) return false;
  syncMosquitto(c.mosquitto, devices, serviceAccounts(c));
  return true;
}
