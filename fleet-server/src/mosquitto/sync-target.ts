/**
 * Which mosquitto files a config asks the registry to keep in step, and how to reload that broker:
 * the managed one (broker.embedded.engine "mosquitto", files under <dataDir>/mosquitto, reloaded
 * only when the pid file names our running mosquitto) or an external one (the `mosquitto` section,
 * reloaded through its pid file). Used by the running server and by `fleetctl device add --config`.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FleetConfig } from '../config/schema.js';
import { livePid, managedMosquittoFiles, managedServiceSecret, SERVICE_USERNAME } from '../broker/managed-mosquitto.js';
import { mosquittoPid, reloadByPidFile, writeMosquittoFiles, type ServiceAccount } from './files.js';

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

/** Where a config's mosquitto files are and how that broker is told to re-read them. */
interface MosquittoTarget {
  write(devices: { id: string; secretHash: string }[]): void;
  /** Sends the SIGHUP, finding the process anew each time. */
  reload(): void;
  /** The broker's pid if it can be found now (for its run state), else undefined. */
  pid(): number | undefined;
}

function mosquittoTarget(c: FleetConfig, guess = false): MosquittoTarget | undefined {
  if (managedEngine(c, guess)) {
    const f = managedMosquittoFiles(c.dataDir);
    return {
      write: (devices) => { writeMosquittoFiles({ passwordFile: f.passwordFile, aclFile: f.aclFile }, devices, serviceAccounts(c, guess)); },
      reload: () => {
        const pid = livePid(f);
        if (pid === undefined) return;
        try {
          process.kill(pid, 'SIGHUP');
        } catch (err) {
          // Ended since the check: a restarted one reads the new files when it starts.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      },
      pid: () => livePid(f),
    };
  }
  const m = c.mosquitto;
  if (!m) return undefined;
  return {
    write: (devices) => { writeMosquittoFiles(m, devices, serviceAccounts(c)); },
    reload: () => { if (m.pidFile) reloadByPidFile(m.pidFile); },
    pid: () => (m.pidFile ? mosquittoPid(m.pidFile) : undefined),
  };
}

/**
 * Whether process `pid` is runnable or in disk wait now (the state letter of Linux /proc/PID/stat,
 * proc(5)): 'R' or 'D'. false where it sleeps or cannot be read.
 */
function busy(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 'R' || state === 'D';
  } catch {
    return false;
  }
}

/**
 * Rewrites the password and ACL files from `devices` and reloads the broker. Returns false when
 * the config names no mosquitto files; true when the files were written (reloaded or not running).
 * `guess`: see managedEngine. For one change made by a process that then exits (`fleetctl device
 * add`); the running server uses MosquittoSync.
 */
export function syncConfiguredMosquitto(c: FleetConfig, devices: { id: string; secretHash: string }[], opts: { guess?: boolean; busyWaitMs?: number } = {}): boolean {
  const target = mosquittoTarget(c, opts.guess);
  if (!target) return false;
  target.write(devices);
  // As MosquittoSync does, not into a reload in progress (a running server's, say): waits here,
  // blocking, while the broker runs, up to busyWaitMs (default 5 s), then signals anyway.
  const deadline = performance.now() + (opts.busyWaitMs ?? 5000);
  while (busy(target.pid()) && performance.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  target.reload();
  return true;
}

/**
 * The running fleet server's link to mosquitto's files: each change is written at once; the SIGHUP
 * that follows it waits until mosquitto is not running (sleeping in its event loop, /proc/PID/stat)
 * and until `minGapMs` have passed since the one before. Writes made meanwhile share one SIGHUP.
 *
 * mosquitto notes a SIGHUP in a flag and clears the flag when the reload it started ends (mosquitto
 * 2.0 src/loop.c: `flag_reload = false` after config__read and mosquitto_security_init), so a SIGHUP
 * that arrives during a reload is lost. When that reload had read the files before the newest write,
 * the device just added was refused until the next registry change: with Debian's mosquitto 2.0.11
 * and 2000 devices, two devices added 80-220 ms apart left the second one refused; with a few
 * devices the window is a few ms, which a busy machine widens (test/integration/mqtt-scale.test.ts
 * once saw its second agent refused for 10 s). A reload is CPU work from its first read of the files
 * to the flag's reset (short of a log write that blocks, a slow log file or syslog), so a mosquitto
 * seen sleeping after a write is not inside a reload that began before it: a SIGHUP sent then
 * starts a reload that reads that write, or joins one not yet begun. No fixed delay would do: a
 * reload's length grows with the device count (the password file: ~0.1 s for 40 000 devices here)
 * and with the machine's load. Where /proc cannot tell (another OS, a pid file that names no
 * mosquitto), only the gap spaces the SIGHUPs. `fleetctl device add` beside a running server also
 * waits while mosquitto runs (syncConfiguredMosquitto: up to 5 s, no gap); the two checks can still
 * race, by microseconds.
 */
export class MosquittoSync {
  private lastReloadAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** When the oldest write not yet followed by a SIGHUP was made. */
  private dueSince: number | undefined;
  private readonly target: MosquittoTarget | undefined;
  private readonly minGapMs: number;
  private readonly maxWaitMs: number;
  private readonly pollMs = 20;
  private state: 'open' | 'closing' | 'closed' = 'open';

  constructor(config: FleetConfig, private readonly opts: { minGapMs?: number; maxWaitMs?: number; onError: (err: unknown) => void }) {
    this.target = mosquittoTarget(config);
    this.minGapMs = opts.minGapMs ?? 500;
    // A broker that never sleeps this long gets the SIGHUP anyway.
    this.maxWaitMs = opts.maxWaitMs ?? 30_000;
  }

  /**
   * Writes the files and sends the reload now or as soon as it may. False when the config names no
   * mosquitto files. A reload sent now throws what it meets (a stale pid file); a later one reports
   * to onError.
   */
  sync(devices: { id: string; secretHash: string }[]): boolean {
    if (!this.target) return false;
    this.target.write(devices);
    this.dueSince ??= performance.now();
    // A SIGHUP still ahead (a timer's, or the one close() is about to send) reads this write too.
    if (this.timer || this.state === 'closing') return true;
    if (this.state === 'closed' || this.mayReload()) this.reloadNow();
    else this.schedule();
    return true;
  }

  /**
   * Sends a reload still due, once the broker may take it (at most `waitMs`): the server is
   * stopping, the broker may not be. Syncs meanwhile join that reload; later ones signal at once.
   */
  async close(waitMs = 5000): Promise<void> {
    if (this.state !== 'open') return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.state = 'closing';
      const deadline = performance.now() + waitMs;
      while (!this.mayReload() && performance.now() < deadline) await new Promise((r) => setTimeout(r, this.pollMs));
      this.reloadReporting();
    }
    this.state = 'closed';
  }

  private mayReload(): boolean {
    const now = performance.now();
    if (now < this.lastReloadAt + this.minGapMs) return false;
    return !busy(this.target!.pid()) || now - this.dueSince! >= this.maxWaitMs;
  }

  private schedule(): void {
    const wait = Math.max(this.pollMs, this.lastReloadAt + this.minGapMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.mayReload()) this.reloadReporting();
      else this.schedule();
    }, wait);
    this.timer.unref();
  }

  private reloadReporting(): void {
    try {
      this.reloadNow();
    } catch (err) {
      this.opts.onError(err);
    }
  }

  private reloadNow(): void {
    this.lastReloadAt = performance.now();
    this.dueSince = undefined;
    this.target!.reload();
  }
}
