/**
 * ServiceLifecycle: turns SIGTERM/SIGINT into one bounded, ordered shutdown and SIGHUP into a
 * serialized live reload, and tells systemd about both through the ServiceNotifier.
 *
 * Shutdown: the first SIGTERM or SIGINT sends STOPPING=1, then runs the registered handlers in
 * registration order (the pipeline registers "stop capture", then "finish or abandon in-flight
 * inference", then "flush the outbox"), each bounded by its own `timeoutMs`. A handler that runs
 * past its bound is abandoned and counted: the stop stays bounded and still exits 0, because
 * abandoning in-flight work within the bound is the designed behaviour. A handler that throws
 * makes the exit code 1. A second SIGTERM is ignored (systemd escalates to SIGKILL after
 * TimeoutStopSec by itself); a second SIGINT is an impatient operator and exits 130 at once.
 *
 * Reload: SIGHUP (systemd's ExecReload= sends it) sends RELOADING=1, runs the reload handlers, then
 * READY=1. Reloads never overlap: a SIGHUP during a reload queues exactly one more.
 */
import { performance } from 'node:perf_hooks';
import { moduleLogger, type Logger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import type { ServiceNotifier } from './notifier.js';

export type ShutdownReason = 'SIGTERM' | 'SIGINT' | 'request';
export type ShutdownHandler = (reason: ShutdownReason) => Promise<void> | void;
export type ReloadHandler = () => Promise<void> | void;

/** The part of `process` used here, injectable for tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface ShutdownResult {
  exitCode: number;
  reason: ShutdownReason;
  durationMs: number;
  /** Names of handlers abandoned at their bound. */
  timedOut: string[];
  /** Names of handlers that threw. */
  failed: string[];
}

export interface ServiceLifecycleOptions {
  notifier?: ServiceNotifier;
  signals?: SignalSource;
  /** Called with the final exit code; default: process.exit. */
  exit?: (code: number) => void;
  /**
   * Clock (ms) for the spans measured here (the repeated-SIGINT window, the shutdown's duration);
   * monotonic by default: on the wall clock, an NTP step during a shutdown took a wrapper's relayed
   * copy of the first Ctrl-C for a second one (exit 130, the outbox not flushed) and logged a
   * negative or hour-long duration.
   */
  now?: () => number;
  log?: Logger;
  /** Bound for a handler registered without one. */
  defaultTimeoutMs?: number;
}

interface Registered<T> {
  name: string;
  handler: T;
  timeoutMs: number;
}

/** A second SIGINT this soon after the first is the same Ctrl-C, delivered twice. */
const DUPLICATE_SIGNAL_MS = 300;

export class ServiceLifecycle {
  private readonly notifier: ServiceNotifier | undefined;
  private readonly signals: SignalSource;
  private readonly exit: (code: number) => void;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly defaultTimeoutMs: number;
  private readonly shutdownHandlers: Registered<ShutdownHandler>[] = [];
  private readonly reloadHandlers: Registered<ReloadHandler>[] = [];
  private shutdownPromise: Promise<ShutdownResult> | undefined;
  private reloadRunning: Promise<void> | undefined;
  private reloadQueued = false;
  private started = false;
  private firstSignalAt: number | undefined;
  readonly stats = { reloads: 0, reloadFailures: 0, ignoredSignals: 0 };

  private readonly onTerm = (): void => { this.onSignal('SIGTERM'); };
  private readonly onInt = (): void => { this.onSignal('SIGINT'); };
  private readonly onHup = (): void => { void this.reload(); };

  constructor(opts: ServiceLifecycleOptions = {}) {
    this.notifier = opts.notifier;
    this.signals = opts.signals ?? process;
    this.exit = opts.exit ?? ((code) => process.exit(code));
    this.now = opts.now ?? (() => performance.now());
    this.log = opts.log ?? moduleLogger('service');
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
  }

  /** Installs the SIGTERM/SIGINT/SIGHUP listeners; safe twice. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.signals.on('SIGTERM', this.onTerm);
    this.signals.on('SIGINT', this.onInt);
    this.signals.on('SIGHUP', this.onHup);
  }

  /** Removes the listeners; safe twice. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.signals.off('SIGTERM', this.onTerm);
    this.signals.off('SIGINT', this.onInt);
    this.signals.off('SIGHUP', this.onHup);
  }

  /** Registers a shutdown step; steps run in registration order, each within `timeoutMs`. */
  onShutdown(handler: ShutdownHandler, opts: { timeoutMs?: number; name?: string } = {}): void {
    this.shutdownHandlers.push({ handler, timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, name: opts.name ?? `shutdown#${this.shutdownHandlers.length + 1}` });
  }

  /** Registers a live-reload step run on SIGHUP (or `reload()`, e.g. on a pushed config revision). */
  onReload(handler: ReloadHandler, opts: { timeoutMs?: number; name?: string } = {}): void {
    this.reloadHandlers.push({ handler, timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, name: opts.name ?? `reload#${this.reloadHandlers.length + 1}` });
  }

  get stopping(): boolean {
    return this.shutdownPromise !== undefined;
  }

  /** Runs the shutdown once and then calls `exit`; later calls return the same result. */
  shutdown(reason: ShutdownReason = 'request'): Promise<ShutdownResult> {
    this.shutdownPromise ??= this.runShutdown(reason).then((result) => {
      this.stop();
      this.exit(result.exitCode);
      return result;
    });
    return this.shutdownPromise;
  }

  /** Runs the reload handlers (serialized, coalesced). Resolves when this reload (or the queued one) finished. */
  async reload(): Promise<void> {
    if (this.stopping) return;
    if (this.reloadRunning) {
      this.reloadQueued = true;
      return this.reloadRunning;
    }
    this.reloadRunning = this.runReloads();
    try {
      await this.reloadRunning;
    } finally {
      this.reloadRunning = undefined;
    }
  }

  private async runReloads(): Promise<void> {
    do {
      this.reloadQueued = false;
      this.stats.reloads++;
      await this.notifier?.reloading();
      let ok = true;
      for (const r of this.reloadHandlers) {
        const outcome = await bounded(r, () => r.handler());
        if (outcome !== 'ok') {
          ok = false;
          this.stats.reloadFailures++;
          this.log.error({ handler: r.name, outcome: outcome === 'timeout' ? 'timeout' : describeError(outcome.error) }, 'reload step failed; keeping the running configuration for it');
        }
      }
      await this.notifier?.reloaded(ok ? 'reloaded' : 'reload failed; see journal');
    } while (this.reloadQueued && !this.stopping);
  }

  private onSignal(signal: 'SIGTERM' | 'SIGINT'): void {
    if (!this.stopping) {
      this.log.info({ signal }, 'shutting down');
      this.firstSignalAt = this.now();
      void this.shutdown(signal);
      return;
    }
    this.stats.ignoredSignals++;
    // One Ctrl-C can arrive twice: the terminal sends SIGINT to the whole process group, and a wrapper
    // in it (tsx, npm) relays its own copy. Taken as a second Ctrl-C, it cut every `npm start` short
    // without draining the outbox. A person's second Ctrl-C comes later than this.
    if (signal === 'SIGINT' && this.now() - (this.firstSignalAt ?? 0) < DUPLICATE_SIGNAL_MS) {
      this.log.debug('SIGINT again at once (relayed by a wrapper); still shutting down');
      return;
    }
    if (signal === 'SIGINT') {
      this.log.warn('second SIGINT: exiting now without waiting for the shutdown steps');
      this.exit(130);
    }
  }

  private async runShutdown(reason: ShutdownReason): Promise<ShutdownResult> {
    const t0 = this.now();
    await this.notifier?.stopping();
    const timedOut: string[] = [];
    const failed: string[] = [];
    for (const h of this.shutdownHandlers) {
      const outcome = await bounded(h, () => h.handler(reason));
      if (outcome === 'timeout') {
        timedOut.push(h.name);
        this.log.warn({ handler: h.name, timeoutMs: h.timeoutMs }, 'shutdown step abandoned at its bound');
      } else if (outcome !== 'ok') {
        failed.push(h.name);
        this.log.error({ handler: h.name, err: describeError(outcome.error) }, 'shutdown step failed');
      }
    }
    const durationMs = this.now() - t0;
    const exitCode = failed.length > 0 ? 1 : 0;
    this.log.info({ reason, durationMs, timedOut, failed, exitCode }, 'shutdown complete');
    this.notifier?.stop();
    return { exitCode, reason, durationMs, timedOut, failed };
  }
}

/** Runs `fn` for at most `timeoutMs`; the timer never keeps the process alive. */
async function bounded(reg: { timeoutMs: number }, fn: () => Promise<void> | void): Promise<'ok' | 'timeout' | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), reg.timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(fn).then(() => 'ok' as const), timeout]);
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}
