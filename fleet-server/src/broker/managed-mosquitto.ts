/**
 * The fleet server's other embedded broker: Debian's mosquitto, run as a child process that the
 * fleet server configures, supervises and stops. It exists because aedes (npm 1.2.0 and
 * 2.0.0-beta.1, README "MQTT 5.0 (not support yet)") speaks MQTT 3.1.1 only; mosquitto 2.x speaks
 * MQTT 5, so with `broker.embedded.engine: "mosquitto"` one `fleet-server serve` gives agents MQTT 5
 * end to end without a separately run broker.
 *
 * Everything lives in `<dataDir>/mosquitto/`: the generated mosquitto.conf, the password and ACL
 * files (mosquitto/files.ts, rewritten from the registry and reloaded with SIGHUP), the persistence
 * file, the pid file and the fleet server's service secret. The fleet server itself connects as
 * that service account over MQTT 5 (ingest/external-source.ts), like a replica on an external broker.
 *
 * mosquitto.conf(5) facts used: `listener PORT HOST` opens a listener and the `certfile`/`keyfile`
 * lines after it belong to it; without `per_listener_settings true`, `password_file`, `acl_file` and
 * `allow_anonymous` apply to every listener; `persistence true` saves to `persistence_location` on
 * SIGTERM and every `autosave_interval` seconds; `user` is the account it switches to when started
 * as root. mosquitto cannot bind port 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { randomToken } from '../db/credentials.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { describeError } from '../../../agent/src/util/errors.js';
import { Backoff } from '../../../agent/src/link/backoff.js';
import { BrokerError } from './embedded.js';
import { MAX_PACKET_REMAINING_LENGTH } from './acl.js';

export const DEFAULT_MOSQUITTO_PATH = '/usr/sbin/mosquitto';
export const SERVICE_USERNAME = 'svc.fleet-server';

/** Where the managed broker keeps its files under the fleet server's data directory. */
export interface ManagedMosquittoFiles {
  dir: string;
  confFile: string;
  passwordFile: string;
  aclFile: string;
  pidFile: string;
  serviceSecretFile: string;
}

export function managedMosquittoFiles(dataDir: string): ManagedMosquittoFiles {
  const dir = resolve(dataDir, 'mosquitto');
  return {
    dir,
    confFile: join(dir, 'mosquitto.conf'),
    passwordFile: join(dir, 'passwd'),
    aclFile: join(dir, 'acl'),
    pidFile: join(dir, 'mosquitto.pid'),
    serviceSecretFile: join(dir, 'service-secret'),
  };
}

/**
 * The fleet server's own MQTT password at its managed broker: made once (mode 0600) and kept, so
 * `fleetctl device add --config` can rewrite the password file while the server runs.
 */
export function managedServiceSecret(files: ManagedMosquittoFiles): string {
  if (existsSync(files.serviceSecretFile)) return readFileSync(files.serviceSecretFile, 'utf8').trim();
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  const secret = randomToken(32);
  writeFileSync(files.serviceSecretFile, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/**
 * The pid in the pid file when that process is still our mosquitto (its command line names our
 * conf file), so a stale pid file never gets another process signalled.
 */
export function livePid(files: ManagedMosquittoFiles): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(files.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes(files.confFile) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** mosquitto's stderr lines without their timestamps ("1764100000: Error: ..."), minus the root warning. */
function mosquittoLines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/^\d+: /, '').trim())
    .filter((l) => l && !l.includes('should not be run as root'));
}

/**
 * Whether process `pid` has installed a handler for SIGHUP (bit 0 of SigCgt in /proc/PID/status,
 * proc(5)). mosquitto opens its listeners before it installs its signal handlers (src/mosquitto.c
 * main: listeners__start, then signal__setup, in 2.0.11 as today), and SIGHUP's default action ends
 * the process: a reload sent in that window kills the broker. Readiness therefore waits for this.
 */
export function catchesSighup(pid: number): boolean {
  try {
    const line = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line !== null && (BigInt(`0x${line[1]}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

export interface ListenerSettings {
  host: string;
  port: number;
  tls?: { port: number; certPath: string; keyPath: string };
  /** Where the plain listener binds, when not at `host` (e.g. 127.0.0.1 with TLS: only TLS from outside). */
  plainHost?: string;
  /**
   * use_username_as_clientid (default true): one fleet server on its own broker. A broker shared by
   * several server replicas under one service username cannot (they would take over each other's
   * session); tests standing in for such an external broker turn it off.
   */
  bindClientIds?: boolean;
}

export function mosquittoConfText(files: ManagedMosquittoFiles, l: ListenerSettings, user: string): string {
  const lines = [
    '# Generated by fleet-server at each start (broker.embedded.engine "mosquitto"); edits are overwritten.',
    `listener ${l.port} ${l.plainHost ?? l.host}`,
  ];
  if (l.tls) {
    lines.push(`listener ${l.tls.port} ${l.host}`, `certfile ${resolve(l.tls.certPath)}`, `keyfile ${resolve(l.tls.keyPath)}`);
  }
  lines.push(
    'allow_anonymous false',
    // A client's id is its username (mosquitto.conf(5)): a device cannot take over another's
    // session, or the fleet server's, by connecting with its client id (MQTT-3.1.4-2).
    ...(l.bindClientIds === false ? [] : ['use_username_as_clientid true']),
    // No packet larger than the largest device message (an alert with its snapshot) and its header:
    // megabyte payloads, retained, would otherwise sit in the broker's memory, and a packet's declared
    // length is refused before its body is read, logged in or not (mosquitto.conf(5); message_size_limit
    // checked the payload only once all of it had been buffered). +5: the fixed header itself.
    `max_packet_size ${MAX_PACKET_REMAINING_LENGTH + 5}`,
    `password_file ${files.passwordFile}`,
    `acl_file ${files.aclFile}`,
    'persistence true',
    `persistence_location ${files.dir}/`,
    'autosave_interval 30',
    // The fleet server's session queues QoS 1 device messages while it restarts; 500 devices × a few
    // messages each must fit (the default is 1000 per client).
    'max_queued_messages 100000',
    // Replies go out at once, not after the client's delayed ACK (Nagle; see agent/src/util/tcp-nodelay.ts):
    // OTA chunks are fetched one request and one reply at a time.
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'connection_messages false',
    `user ${user}`,
    '',
  );
  return lines.join('\n');
}

export interface ManagedMosquittoOptions extends ListenerSettings {
  files: ManagedMosquittoFiles;
  binary?: string;
  logger?: Logger;
  /** Bound for the port to accept connections after a (re)start (default 10 s). */
  readyTimeoutMs?: number;
}

export class ManagedMosquitto {
  private child: ChildProcess | undefined;
  /** The child that came up and listened: only its exit means a crash to restart from. */
  private servingChild: ChildProcess | undefined;
  private stopping = false;
  private stderrTail = '';
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private readonly log: Logger;
  /** Unexpected exits that were followed by a restart. */
  restarts = 0;

  constructor(private readonly opts: ManagedMosquittoOptions) {
    this.log = opts.logger ?? moduleLogger('mosquitto');
  }

  get binary(): string {
    return this.opts.binary ?? DEFAULT_MOSQUITTO_PATH;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get port(): number {
    return this.opts.port;
  }

  get tlsPort(): number | undefined {
    return this.opts.tls?.port;
  }

  /** Where this process reaches the listener: loopback of the same family when it takes every address. */
  private get localHost(): string {
    const h = this.opts.plainHost ?? this.opts.host;
    // mosquitto sets IPV6_V6ONLY on IPv6 sockets, so "::" is reached over ::1, not 127.0.0.1.
    return h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '::1' : h;
  }

  /** Address the fleet server itself connects to. */
  get localUrl(): string {
    const h = this.localHost;
    return `mqtt://${h.includes(':') ? `[${h}]` : h}:${this.opts.port}`;
  }

  /** Writes mosquitto.conf, starts mosquitto and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.child) return;
    this.stopping = false;
    if (!existsSync(this.binary)) {
      throw new BrokerError(`broker.embedded.engine is "mosquitto" but ${this.binary} does not exist; install it (apt-get install mosquitto, scripts/setup.sh does) or set broker.embedded.mosquittoPath.`);
    }
    if (this.opts.port === 0 || this.opts.tls?.port === 0) {
      throw new BrokerError('mosquitto cannot listen on port 0: set broker.embedded.port (and tls.port) to a fixed port.');
    }
    const f = this.opts.files;
    mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    await this.endOrphan();
    writeFileSync(f.confFile, mosquittoConfText(f, this.opts, userInfo().username), { mode: 0o600 });
    await this.spawnAndWait();
  }

  /**
   * A fleet server killed with SIGKILL leaves its mosquitto running and holding the port; the next
   * start ends that one (SIGTERM, so it saves its queue) before starting its own.
   */
  private async endOrphan(): Promise<void> {
    const pid = livePid(this.opts.files);
    if (pid === undefined) return;
    this.log.warn({ mosquittoPid: pid }, 'ending the mosquitto left by an earlier fleet-server process');
    const signal = (sig: NodeJS.Signals): void => {
      try {
        process.kill(pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return; // it ended meanwhile
        throw new BrokerError(`The mosquitto left by an earlier fleet-server (pid ${pid}) could not be stopped: ${(err as Error).message}`, { cause: err });
      }
    };
    signal('SIGTERM');
    const deadline = Date.now() + 5000;
    let killed = false;
    // Until it is gone, so that its port is free for ours.
    while (livePid(this.opts.files) === pid) {
      if (!killed && Date.now() > deadline) { signal('SIGKILL'); killed = true; }
      if (Date.now() > deadline + 5000) throw new BrokerError(`The mosquitto left by an earlier fleet-server (pid ${pid}) did not end after SIGKILL`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async spawnAndWait(): Promise<void> {
    const f = this.opts.files;
    const spawnedAt = Date.now();
    this.stderrTail = '';
    const child = spawn(this.binary, ['-c', f.confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      this.stderrTail = (this.stderrTail + text).slice(-2000);
      for (const msg of mosquittoLines(text)) this.log.warn({ mosquitto: msg }, 'mosquitto');
    });
    const spawnError = new Promise<Error>((res) => child.once('error', res));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 10_000);
    for (;;) {
      const err = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
      if (err) {
        this.child = undefined;
        throw new BrokerError(`Could not start ${this.binary}: ${err.message}`, { cause: err });
      }
      if (child.exitCode !== null || child.signalCode !== null) throw this.startFailure(child);
      // Ready = its listeners accept and it catches SIGHUP (see catchesSighup); a listener alone
      // could also be another process's, but then mosquitto's bind failed and it has exited.
      if (child.pid !== undefined && catchesSighup(child.pid) && await this.accepts(this.opts.port)) {
        if (child.exitCode !== null || child.signalCode !== null) throw this.startFailure(child);
        if (!this.opts.tls || await this.accepts(this.opts.tls.port)) break;
      }
      if (Date.now() > deadline) {
        this.child = undefined;
        child.kill('SIGKILL');
        throw new BrokerError(`mosquitto did not accept connections on ${this.opts.host}:${this.opts.port} within ${this.opts.readyTimeoutMs ?? 10_000} ms; its output: ${mosquittoLines(this.stderrTail).join('; ') || '(none)'}`);
      }
    }
    // It may have ended during the last probe; its exit was not yet ours to handle.
    if (child.exitCode !== null || child.signalCode !== null) throw this.startFailure(child);
    this.servingChild = child;
    // Written only now: whoever reloads through the pid file (fleetctl) finds a mosquitto that can take SIGHUP.
    writeFileSync(f.pidFile, `${child.pid ?? ''}\n`, { mode: 0o600 });
    // A device change while it was starting found no pid to signal: read the files again.
    if ((statSync(f.passwordFile, { throwIfNoEntry: false })?.mtimeMs ?? 0) >= spawnedAt) child.kill('SIGHUP');
    // The restart delay starts over only once a broker has stayed up, so one that dies right after
    // each start is retried ever more slowly instead of twice a second.
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => { if (this.servingChild === child) this.backoff.reset(); }, 30_000);
    this.stableTimer.unref();
    this.log.info({ mosquittoPid: child.pid, port: this.opts.port, tlsPort: this.opts.tls?.port }, 'mosquitto listening');
  }

  private startFailure(child: ChildProcess): BrokerError {
    this.child = undefined;
    const out = mosquittoLines(this.stderrTail).join('; ');
    const hint = /address already in use/i.test(out)
      ? ` Another process holds the port (Debian's mosquitto service does after apt install: systemctl disable --now mosquitto), or set broker.embedded.port.`
      : '';
    return new BrokerError(`mosquitto exited during start (${child.exitCode ?? child.signalCode}) on ${this.opts.host}:${this.opts.port}: ${out || '(no output)'}.${hint}`);
  }

  private accepts(port: number): Promise<boolean> {
    return new Promise((res) => {
      const s = connect(port, this.localHost);
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
  }

  /** An exit we did not ask for: log it and start again with a growing delay. */
  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.servingChild !== child || this.child !== child || this.stopping) return;
    this.child = undefined;
    this.servingChild = undefined;
    this.log.error({ code, signal, output: mosquittoLines(this.stderrTail).join('; ').slice(-500) }, 'mosquitto exited');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.backoff.nextDelayMs();
    this.log.warn({ restartInMs: delay }, 'restarting mosquitto');
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.restarts += 1;
      this.spawnAndWait().catch((err: unknown) => {
        this.log.error({ err: describeError(err) }, 'mosquitto restart failed');
        if (!this.stopping && !this.child) this.scheduleRestart();
      });
    }, delay);
  }

  /** Re-reads the password and ACL files (SIGHUP). */
  reload(): boolean {
    if (!this.running) return false;
    this.child!.kill('SIGHUP');
    return true;
  }

  /** SIGTERM (mosquitto saves its persistence file), SIGKILL past the bound. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((res) => {
        const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('exit', () => { clearTimeout(t); res(); });
        child.kill('SIGTERM');
      });
    }
    rmSync(this.opts.files.pidFile, { force: true });
  }
}
