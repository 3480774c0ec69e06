/**
 * ServiceNotifier: what the agent tells systemd, and when (sd_notify(3), systemd.service(5)).
 *
 * - READY=1 once, after the first frame went all the way through the pipeline (DESIGN.md "Service"):
 *   a unit that is "active" has proved it can capture and infer, not just that it parsed its config.
 * - WATCHDOG=1 every WATCHDOG_USEC/2 (the half period sd_watchdog_enabled(3) recommends), but only
 *   when `frameProcessed()` was called since the previous tick. A stalled camera or a hung worker
 *   therefore stops the pings and systemd restarts the unit (Restart=on-failure covers watchdog
 *   timeouts). systemd arms the watchdog only once start-up completed, so no pings before READY.
 * - RELOADING=1 (+ MONOTONIC_USEC, required from systemd 253 for Type=notify-reload) and READY=1
 *   around a live reload; STOPPING=1 when shutdown begins; STATUS= for `systemctl status`.
 *
 * Without $NOTIFY_SOCKET (not run by systemd: a shell, tests, the demo) every call is a no-op.
 */
import { moduleLogger, type Logger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { createNotifyTransport, type NotifyTransport } from './notify-transport.js';

export interface NotifierTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Monotonic microseconds, for MONOTONIC_USEC (CLOCK_MONOTONIC, as systemd compares). */
  monotonicUsec(): bigint;
}

const realTimers: NotifierTimers = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    // The watchdog must never be the thing that keeps the process alive.
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  // process.hrtime is CLOCK_MONOTONIC on Linux (libuv uv_hrtime).
  monotonicUsec: () => process.hrtime.bigint() / 1000n,
};

export interface NotifierStats {
  sent: number;
  failed: number;
  watchdogPings: number;
  /** Ticks where no frame had moved since the previous tick, so no ping was sent. */
  watchdogSkipped: number;
  framesProcessed: number;
}

export interface ServiceNotifierOptions {
  /** Undefined: notifications off (not under systemd). */
  transport?: NotifyTransport;
  /** From WATCHDOG_USEC; undefined or 0: no watchdog configured. */
  watchdogUsec?: number;
  timers?: NotifierTimers;
  log?: Logger;
  /**
   * 'frames' (the agent): ping only when frameProcessed() was called since the last tick.
   * 'alive' (the fleet server, which has no frames): every tick pings, so the watchdog proves the
   * event loop still runs timers.
   */
  watchdogMode?: 'frames' | 'alive';
}

export class ServiceNotifier {
  readonly stats: NotifierStats = { sent: 0, failed: 0, watchdogPings: 0, watchdogSkipped: 0, framesProcessed: 0 };
  private readonly transport: NotifyTransport | undefined;
  private readonly watchdogUsec: number;
  private readonly timers: NotifierTimers;
  private readonly log: Logger;
  private readonly watchdogMode: 'frames' | 'alive';
  private timer: unknown;
  private isReady = false;
  private isStopping = false;
  /** STATUS text set between reloading() and reloaded(); undefined outside a reload. */
  private reloadNote: string | undefined;
  private framesAtLastTick = 0;
  private readonly failedKinds = new Set<string>();

  constructor(opts: ServiceNotifierOptions = {}) {
    this.transport = opts.transport;
    this.watchdogUsec = opts.watchdogUsec ?? 0;
    this.timers = opts.timers ?? realTimers;
    this.log = opts.log ?? moduleLogger('service');
    this.watchdogMode = opts.watchdogMode ?? 'frames';
  }

  /** Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as sd_watchdog_enabled(3) does. */
  static fromEnv(opts: { env?: NodeJS.ProcessEnv; pid?: number; log?: Logger; watchdogMode?: 'frames' | 'alive' } = {}): ServiceNotifier {
    const env = opts.env ?? process.env;
    const pid = opts.pid ?? process.pid;
    const log = opts.log ?? moduleLogger('service');
    const { transport, reason } = createNotifyTransport({ env, pid });
    if (reason) log.warn({ reason }, 'sd_notify transport');
    return new ServiceNotifier({ transport, watchdogUsec: watchdogUsecFromEnv(env, pid), log, watchdogMode: opts.watchdogMode });
  }

  get enabled(): boolean {
    return this.transport !== undefined;
  }

  /** Watchdog tick period in ms (WATCHDOG_USEC / 2), or 0 when systemd set no watchdog. */
  get watchdogIntervalMs(): number {
    return this.transport && this.watchdogUsec > 0 ? Math.max(1, Math.floor(this.watchdogUsec / 2000)) : 0;
  }

  /** True once READY=1 was sent (or would have been, with notifications off). */
  get readySent(): boolean {
    return this.isReady;
  }

  /** Call once per frame that went through the pipeline. Cheap: a counter. */
  frameProcessed(): void {
    this.stats.framesProcessed++;
  }

  /** READY=1 (once). Starts the watchdog ticks. */
  async ready(status?: string): Promise<void> {
    if (this.isReady || this.isStopping) return;
    this.isReady = true;
    await this.send(status ? `READY=1\nSTATUS=${oneLine(status)}` : 'READY=1');
    this.startWatchdog();
  }

  async status(text: string): Promise<void> {
    if (this.reloadNote !== undefined) this.reloadNote = text;
    await this.send(`STATUS=${oneLine(text)}`);
  }

  /**
   * Asks for more start-up time (model loads, engine builds), sd_notify EXTEND_TIMEOUT_USEC: systemd
   * then waits `ms` from now for the next message, or for READY. Not once ready or stopping: the same
   * message would extend the runtime or stop timeout instead (sd_notify(3)).
   */
  async extendStartTimeout(ms: number, status?: string): Promise<void> {
    if (this.isReady || this.isStopping) return;
    const extend = `EXTEND_TIMEOUT_USEC=${Math.round(ms * 1000)}`;
    await this.send(status ? `${extend}\nSTATUS=${oneLine(status)}` : extend);
  }

  async reloading(): Promise<void> {
    this.reloadNote = '';
    await this.send(`RELOADING=1\nMONOTONIC_USEC=${this.timers.monotonicUsec()}`);
  }

  /** A STATUS set during the reload (e.g. "restart needed for /deviceId") is kept in the final one: systemctl status shows the last. */
  async reloaded(status?: string): Promise<void> {
    const note = this.reloadNote;
    this.reloadNote = undefined;
    const text = [status, note].filter(Boolean).join('; ');
    await this.send(text ? `READY=1\nSTATUS=${oneLine(text)}` : 'READY=1');
  }

  /** STOPPING=1 and no more watchdog pings: systemd now waits for the exit (TimeoutStopSec). */
  async stopping(): Promise<void> {
    if (this.isStopping) return;
    this.isStopping = true;
    this.stopWatchdog();
    await this.send('STOPPING=1');
  }

  /** Releases the socket and the timer; safe twice. */
  stop(): void {
    this.stopWatchdog();
    this.transport?.close();
  }

  /** One watchdog decision; public so tests can drive it without waiting for the timer. */
  async tick(): Promise<void> {
    if (!this.isReady || this.isStopping) return;
    const frames = this.stats.framesProcessed;
    if (this.watchdogMode === 'frames' && frames === this.framesAtLastTick) {
      this.stats.watchdogSkipped++;
      if (this.stats.watchdogSkipped === 1 || this.stats.watchdogSkipped % 10 === 0) {
        this.log.warn({ watchdogSkipped: this.stats.watchdogSkipped, framesProcessed: frames }, 'no frame processed in the last watchdog interval; not pinging systemd');
      }
      return;
    }
    this.framesAtLastTick = frames;
    this.stats.watchdogPings++;
    await this.send('WATCHDOG=1');
  }

  private startWatchdog(): void {
    const ms = this.watchdogIntervalMs;
    if (ms === 0 || this.timer !== undefined) return;
    // Frames that arrived before READY count for the first interval.
    this.framesAtLastTick = 0;
    this.timer = this.timers.setInterval(() => { void this.tick(); }, ms);
  }

  private stopWatchdog(): void {
    if (this.timer === undefined) return;
    this.timers.clearInterval(this.timer);
    this.timer = undefined;
  }

  private async send(message: string): Promise<void> {
    if (!this.transport) return;
    try {
      await this.transport.send(message);
      this.stats.sent++;
    } catch (err) {
      this.stats.failed++;
      const d = describeError(err);
      // Log once per kind of failure: a missing socket would otherwise log every watchdog tick.
      if (!this.failedKinds.has(d.code + d.message)) {
        this.failedKinds.add(d.code + d.message);
        this.log.warn({ err: d, failed: this.stats.failed }, 'sd_notify failed');
      }
    }
  }
}

/** WATCHDOG_USEC if set for this process (WATCHDOG_PID absent or ours), else 0. */
export function watchdogUsecFromEnv(env: NodeJS.ProcessEnv, pid: number): number {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return 0;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return 0;
  return usec;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 200);
}
