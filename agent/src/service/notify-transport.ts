/**
 * How an sd_notify datagram reaches systemd.
 *
 * The protocol (sd_notify(3), "Notes" and systemd.service(5) NotifyAccess=): newline-separated
 * `KEY=VALUE` assignments in one AF_UNIX SOCK_DGRAM datagram sent to the path in $NOTIFY_SOCKET;
 * a leading '@' means the Linux abstract namespace. systemd attributes the datagram to a unit by
 * the sender's PID (SCM_CREDENTIALS), so it must come from the service's main process if the unit
 * says NotifyAccess=main.
 *
 * Node's `dgram` only speaks UDP, so there are two transports:
 *  - `UnixDgramTransport` (default): the `unix-dgram` native addon sends from this very process.
 *    Messages carry our PID, NotifyAccess=main is enough, and there is no race. Cost: one more
 *    small native addon built on the target (alongside better-sqlite3 and gstreamer-superficial).
 *    It cannot address abstract sockets (it copies the path with strncpy).
 *  - `SystemdNotifyTransport` (fallback): spawns `systemd-notify --pid=<ours> KEY=VALUE...`. The
 *    sender is a child, so the unit needs NotifyAccess=all, and on systemd < 246 the child may exit
 *    before systemd has looked up its cgroup, so the message is dropped (systemd issue #2739; v246
 *    added the barrier that systemd-notify now waits on). Used only when the addon cannot load or
 *    the socket is abstract; the notifier logs that choice once.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { EdgeFleetError } from '../util/errors.js';

export interface NotifyTransport {
  readonly kind: 'unix-dgram' | 'systemd-notify';
  /** Sends one datagram; resolves when the kernel took it (or the helper exited 0). */
  send(message: string): Promise<void>;
  close(): void;
}

export class NotifyError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_NOTIFY', message, options);
  }
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/** Loads the addon; undefined (with the reason) when it is not built for this machine. */
export function loadUnixDgram(): { mod?: UnixDgramModule; reason?: string } {
  try {
    // CommonJS with a native `.node` main: load through createRequire (stays external in bundles).
    const require = createRequire(import.meta.url);
    return { mod: require('unix-dgram') as UnixDgramModule };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

export class UnixDgramTransport implements NotifyTransport {
  readonly kind = 'unix-dgram' as const;
  private socket: UnixDgramSocket | undefined;
  private readonly mod: UnixDgramModule;
  private readonly path: string;

  constructor(opts: { mod: UnixDgramModule; socketPath: string }) {
    this.mod = opts.mod;
    this.path = opts.socketPath;
  }

  send(message: string): Promise<void> {
    if (!this.socket) {
      this.socket = this.mod.createSocket('unix_dgram');
      // Errors are reported through the send callback; this listener keeps an 'error' event from
      // becoming an uncaught exception.
      this.socket.on('error', () => undefined);
    }
    const buf = Buffer.from(message, 'utf8');
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      socket.send(buf, 0, buf.length, this.path, (err?: Error) => {
        if (err) reject(new NotifyError(`sd_notify to ${this.path} failed (${err.message}); is NOTIFY_SOCKET the unit's socket?`, { cause: err }));
        else resolve();
      });
    });
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}

export type SpawnFn = (command: string, args: string[], options: SpawnOptions) => ChildProcess;

export class SystemdNotifyTransport implements NotifyTransport {
  readonly kind = 'systemd-notify' as const;
  private readonly spawn: SpawnFn;
  private readonly pid: number;
  private readonly binary: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: { pid: number; env: NodeJS.ProcessEnv; spawn?: SpawnFn; binary?: string }) {
    this.spawn = opts.spawn ?? nodeSpawn;
    this.pid = opts.pid;
    this.env = opts.env;
    this.binary = opts.binary ?? 'systemd-notify';
  }

  send(message: string): Promise<void> {
    const args = [`--pid=${this.pid}`, ...message.split('\n').filter((l) => l.length > 0)];
    return new Promise((resolve, reject) => {
      const child = this.spawn(this.binary, args, { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => { if (stderr.length < 1000) stderr += d; });
      child.once('error', (err) => reject(new NotifyError(`cannot run ${this.binary} (${err.message}); install systemd or build the unix-dgram addon`, { cause: err })));
      child.once('close', (code) => {
        if (code === 0) resolve();
        else reject(new NotifyError(`${this.binary} exited ${String(code)}: ${stderr.trim() || 'no message'}; the unit needs NotifyAccess=all for this fallback`));
      });
    });
  }

  close(): void {
    // Nothing held between sends.
  }
}

/**
 * Picks the transport for $NOTIFY_SOCKET, or undefined when not run by systemd (no socket).
 * `reason` says why the fallback was chosen, for one log line.
 */
export function createNotifyTransport(opts: { env: NodeJS.ProcessEnv; pid: number; spawn?: SpawnFn; load?: typeof loadUnixDgram }): { transport?: NotifyTransport; reason?: string } {
  const socketPath = opts.env.NOTIFY_SOCKET;
  if (!socketPath) return {};
  if (!socketPath.startsWith('/') && !socketPath.startsWith('@')) {
    return { reason: `NOTIFY_SOCKET ${JSON.stringify(socketPath)} is neither a path nor an abstract name; notifications off` };
  }
  if (socketPath.startsWith('@')) {
    return { transport: new SystemdNotifyTransport({ pid: opts.pid, env: opts.env, spawn: opts.spawn }), reason: 'abstract NOTIFY_SOCKET: unix-dgram cannot address it, using systemd-notify (needs NotifyAccess=all)' };
  }
  const { mod, reason } = (opts.load ?? loadUnixDgram)();
  if (mod) return { transport: new UnixDgramTransport({ mod, socketPath }) };
  return { transport: new SystemdNotifyTransport({ pid: opts.pid, env: opts.env, spawn: opts.spawn }), reason: `unix-dgram addon unavailable (${reason ?? 'unknown'}); using systemd-notify (needs NotifyAccess=all)` };
}
