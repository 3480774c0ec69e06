/**
 * StartupKeepalive: keeps systemd waiting while start-up work that may outlast TimeoutStartSec runs.
 *
 * The unit gives a start TimeoutStartSec=120s to reach READY (the first frame), but a first start on
 * a Jetson builds the TensorRT engine with trtexec, which takes minutes (up to the adapter's 30 min
 * bound). Killed at 120 s the build started again from nothing at each restart, for ever. While the
 * models load, this sends EXTEND_TIMEOUT_USEC every `intervalMs` (each one gives `extendMs` more, so
 * a missed tick is not fatal) with a STATUS= line saying what is being done, for `systemctl status`.
 * TensorRT engine builds are named (platform-adapters/tensorrt/progress.ts).
 *
 * Bounded: after `maxMs` it stops asking, so a load that hangs still ends in systemd's timeout and a
 * restart. When the work is done, one last extension gives the rest of the start (cameras, the first
 * frame) `restOfStartMs`, what TimeoutStartSec gives a start without a build.
 */
import { performance } from 'node:perf_hooks';
import { moduleLogger, type Logger } from '../util/log.js';
import { subscribeEngineBuild, type EngineBuildEvent } from '../../../platform-adapters/tensorrt/progress.js';
import type { NotifierTimers, ServiceNotifier } from './notifier.js';

export interface StartupKeepaliveOptions {
  notifier: ServiceNotifier;
  /** Default 30 s. */
  intervalMs?: number;
  /** Time asked for at each tick; default 60 s (two ticks). */
  extendMs?: number;
  /** Time given to the rest of the start once the work is done; default 120 s, the unit's TimeoutStartSec. */
  restOfStartMs?: number;
  /** No more extensions after this long; default 60 min (a 30 min engine build, with room for a second model). */
  maxMs?: number;
  timers?: Pick<NotifierTimers, 'setInterval' | 'clearInterval'>;
  /**
   * Monotonic clock (ms) for the time spent, as the link's: on the wall clock, NTP stepping it
   * forward during a first boot's engine build (a box weeks behind) looked like more than `maxMs`,
   * the extensions stopped, and systemd killed the build.
   */
  monotonicNow?: () => number;
  log?: Logger;
}

const realTimers: Pick<NotifierTimers, 'setInterval' | 'clearInterval'> = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export class StartupKeepalive {
  private readonly notifier: ServiceNotifier;
  private readonly intervalMs: number;
  private readonly extendMs: number;
  private readonly restOfStartMs: number;
  private readonly maxMs: number;
  private readonly timers: Pick<NotifierTimers, 'setInterval' | 'clearInterval'>;
  private readonly elapsed: () => number;
  private readonly log: Logger;

  constructor(opts: StartupKeepaliveOptions) {
    this.notifier = opts.notifier;
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.extendMs = opts.extendMs ?? 60_000;
    this.restOfStartMs = opts.restOfStartMs ?? 120_000;
    this.maxMs = opts.maxMs ?? 60 * 60_000;
    this.timers = opts.timers ?? realTimers;
    this.elapsed = opts.monotonicNow ?? (() => performance.now());
    this.log = opts.log ?? moduleLogger('service');
  }

  /** Runs `work` (e.g. "loading models") with the keepalive; its result or error passes through. */
  async during<T>(activity: string, work: () => Promise<T>): Promise<T> {
    if (!this.notifier.enabled || this.notifier.readySent) return work();
    const t0 = this.elapsed();
    let build: (Extract<EngineBuildEvent, { kind: 'start' }> & { at: number }) | undefined;
    const unsubscribe = subscribeEngineBuild((e) => {
      if (e.kind === 'start') {
        build = { ...e, at: this.elapsed() };
        this.log.info({ model: e.modelPath, precision: e.precision, timeoutMs: e.timeoutMs }, 'building the TensorRT engine (once per model and TensorRT version); asking systemd for more start-up time meanwhile');
        void tick();
      } else {
        build = undefined;
        this.log.info({ model: e.modelPath, precision: e.precision, durationMs: e.durationMs, ok: e.ok }, 'TensorRT engine build ended');
      }
    });
    let timer: unknown;
    let ended = false;
    const stopTimer = (): void => {
      if (timer === undefined) return;
      this.timers.clearInterval(timer);
      timer = undefined;
    };
    const tick = async (): Promise<void> => {
      if (ended || timer === undefined) return;
      const elapsedMs = this.elapsed() - t0;
      if (elapsedMs > this.maxMs) {
        stopTimer();
        this.log.warn({ elapsedMs, maxMs: this.maxMs }, `${activity} is still not done; no longer asking systemd for more start-up time, so its timeout applies`);
        await this.notifier.status(`${activity}: not done after ${minutes(elapsedMs)}; start-up timeout no longer extended`);
        return;
      }
      const text = build
        ? `building the TensorRT ${build.precision} engine for ${build.modelPath} with trtexec (${minutes(this.elapsed() - build.at)} so far, at most ${minutes(build.timeoutMs)}; once per model)`
        : `${activity} (${minutes(elapsedMs)} so far)`;
      await this.notifier.extendStartTimeout(this.extendMs, text);
    };
    timer = this.timers.setInterval(() => { void tick(); }, this.intervalMs);
    await tick();
    let result: T;
    try {
      result = await work();
    } finally {
      ended = true;
      stopTimer();
      unsubscribe();
    }
    const elapsedMs = this.elapsed() - t0;
    if (elapsedMs <= this.maxMs) await this.notifier.extendStartTimeout(this.restOfStartMs, `${activity}: done in ${minutes(elapsedMs)}; waiting for the first frame`);
    return result;
  }
}

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min`;
}
