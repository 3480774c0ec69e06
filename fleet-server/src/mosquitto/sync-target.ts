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
 * Whether the config runs the fleet server's own mosquitto. `guess` (fleetctl only, which may be
 * given just a data directory while `fleet-server serve --mqtt-engine mosquitto` chose the engine on
 * its command line): also when an embedded-broker config without a `mosquitto` section has a data
 * directory in which a managed mosquitto ran (its conf file is there).
 */
export function managedEngine(c: FleetConfig, guess = false): boolean {
  if (c.broker.mode !== 'embedded') return false;
  if (c.broker.embedded.engine === 'mosquitto') return true;
  return guess && !c.mosquitto && existsSync(managedMosquittoFiles(c.dataDir).confFile);
}

/** The service account the fleet server uses at the broker whose files it writes. */
export function serviceAccounts(c: FleetConfig, guess = false): ServiceAccount[] {
  if (managedEngine(c, guess)) return [{ username: SERVICE_USERNAME, password: managedServiceSecret(managedMosquittoFiles(c.dataDir)) }];
  const x = c.broker.external;
  return x ? [{ username: x.username, password: x.password }] : [];
}

/**
 * Rewrites the password and ACL files from `devices` and reloads the broker. Returns false when
 * the config names no mosquitto files; true when the files were written (reloaded or not running).
 * `guess`: see managedEngine.
 */
export function syncConfiguredMosquitto(c: FleetConfig, devices: { id: string; secretHash: string }[], opts: { guess?: boolean } = {}): boolean {
  if (managedEngine(c, opts.guess)) {
    const f = managedMosquittoFiles(c.dataDir);
    syncMosquitto({ passwordFile: f.passwordFile, aclFile: f.aclFile }, devices, serviceAccounts(c, opts.guess));
    const pid = livePid(f);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch (err) {
        // Ended since the check: a restarted one reads the new files when it starts.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    return true;
  }
  if (!c.mosquitto) return false;
  syncMosquitto(c.mosquitto, devices, serviceAccounts(c));
  return true;
}
