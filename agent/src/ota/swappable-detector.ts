/**
 * A detector whose model can be replaced between two frames without dropping one. The pipeline
 * awaits `detectTimed` one frame at a time per camera; `swap()` points new calls at the next detector
 * at once and resolves when the calls already running on the old one have finished, so every frame
 * is answered by exactly one model. While a candidate is on trial, a frame on which it throws is
 * answered by the previous detector instead (and the error counted), so a bad model costs no frame.
 */
import { performance } from 'node:perf_hooks';
import type { RgbImage } from '../types.js';
import type { Detector, DetectResult } from '../infer/detector.js';
import { describeError, EdgeFleetError } from '../util/errors.js';

export interface DetectorLike {
  detectTimed(image: RgbImage): Promise<DetectResult>;
  close(): Promise<void>;
  prefetch?(image: RgbImage): void;
}

export interface DetectSample {
  /** Which slot answered: the active model, or the fallback after the active one failed. */
  version: string;
  latencyMs: number;
  detections: number;
  meanScore: number | undefined;
  error?: string;
}

interface Slot { detector: DetectorLike; version: string; inflight: number; drained?: () => void }

export class SwappableDetector {
  private active: Slot;
  private fallback: Slot | undefined;
  private observer: ((s: DetectSample) => void) | undefined;
  private readonly swapListeners: Array<() => void> = [];
  /** Last frame seen; the installer self-tests new models on it. */
  lastFrame: RgbImage | undefined;
  swaps = 0;
  calls = 0;
  /** Frames answered per model version (the fallback's answers count for the fallback). */
  readonly answeredBy: Record<string, number> = {};

  constructor(initial: DetectorLike, version: string) {
    this.active = { detector: initial, version, inflight: 0 };
  }

  get version(): string {
    return this.active.version;
  }

  /** The active model's metadata, provider and session (AgentRunner logs them and applies score-threshold reloads). */
  get meta(): Detector['meta'] {
    return (this.active.detector as Partial<Detector>).meta as Detector['meta'];
  }

  get provider(): string {
    return (this.active.detector as Partial<Detector>).provider ?? 'unknown';
  }

  get session(): Detector['session'] {
    return (this.active.detector as Partial<Detector>).session as Detector['session'];
  }

  /** Observes every answered frame (the health window). */
  observe(fn: ((s: DetectSample) => void) | undefined): void {
    this.observer = fn;
  }

  /** Starts the next frame's resize on the model that will answer it (see Detector.prefetch). */
  prefetch(image: RgbImage): void {
    this.active.detector.prefetch?.(image);
  }

  async detectTimed(image: RgbImage): Promise<DetectResult> {
    this.lastFrame = image;
    this.calls += 1;
    const slot = this.active;
    slot.inflight += 1;
    const t0 = performance.now();
    try {
      const r = await slot.detector.detectTimed(image);
      this.answeredBy[slot.version] = (this.answeredBy[slot.version] ?? 0) + 1;
      this.record(slot.version, performance.now() - t0, r);
      return r;
    } catch (err) {
      // The slot was switched away from while this frame ran on it (a trial ended by revert(), the
      // health window rolling back on an earlier frame): no fallback is left, and the model active now
      // (the one the trial went back to) answers instead. A CI run lost that frame.
      const fb = this.fallback ?? (this.active !== slot ? this.active : undefined);
      this.observer?.({ version: slot.version, latencyMs: performance.now() - t0, detections: 0, meanScore: undefined, error: describeError(err).message });
      if (!fb) throw err;
      fb.inflight += 1;
      try {
        const r = await fb.detector.detectTimed(image);
        this.answeredBy[fb.version] = (this.answeredBy[fb.version] ?? 0) + 1;
        return r;
      } finally {
        this.release(fb);
      }
    } finally {
      this.release(slot);
    }
  }

  /**
   * Makes `next` the active detector for every call from now on; resolves once the old one is idle.
   * With `keepFallback` the old one stays loaded as the fallback (trial); it is returned otherwise.
   * Refused (E_TRIAL, nothing changed) while a trial runs: the fallback slot holds the known-good
   * model, and overwriting it left that model's worker open for good and nothing to go back to
   * (end the trial first: revert or dropFallback).
   */
  async swap(next: DetectorLike, version: string, opts: { keepFallback: boolean }): Promise<DetectorLike | undefined> {
    if (this.fallback) {
      throw new EdgeFleetError('E_TRIAL', `Cannot swap in ${version}: ${this.active.version} is on trial with ${this.fallback.version} as its fallback; end the trial first (revert or dropFallback).`);
    }
    const old = this.active;
    this.active = { detector: next, version, inflight: 0 };
    this.swaps += 1;
    this.notifySwapped();
    if (old.inflight > 0) await new Promise<void>((resolve) => { old.drained = resolve; });
    if (opts.keepFallback) {
      this.fallback = old;
      return undefined;
    }
    return old.detector;
  }

  /** Ends a trial: the fallback is no longer needed; returns it for closing. */
  dropFallback(): DetectorLike | undefined {
    const fb = this.fallback;
    this.fallback = undefined;
    return fb?.detector;
  }

  /** Ends a trial by going back to the fallback; returns the rejected candidate for closing. */
  async revert(): Promise<DetectorLike | undefined> {
    const fb = this.fallback;
    if (!fb) return undefined;
    this.fallback = undefined;
    const rejected = this.active;
    this.active = fb;
    this.swaps += 1;
    this.notifySwapped();
    if (rejected.inflight > 0) await new Promise<void>((resolve) => { rejected.drained = resolve; });
    return rejected.detector;
  }

  /** Calls `fn` each time another model becomes the active one (swap or revert), after the switch. */
  onSwap(fn: () => void): void {
    this.swapListeners.push(fn);
  }

  private notifySwapped(): void {
    for (const fn of this.swapListeners) {
      try {
        fn();
      } catch {
        // A listener's failure must not break the switch between models.
      }
    }
  }

  async close(): Promise<void> {
    await this.active.detector.close();
    await this.fallback?.detector.close();
  }

  private release(slot: Slot): void {
    slot.inflight -= 1;
    if (slot.inflight === 0 && slot.drained) {
      const d = slot.drained;
      slot.drained = undefined;
      d();
    }
  }

  private record(version: string, latencyMs: number, r: DetectResult): void {
    if (!this.observer) return;
    const n = r.detections.length;
    const meanScore = n > 0 ? r.detections.reduce((a, d) => a + d.score, 0) / n : undefined;
    this.observer({ version, latencyMs: r.timings.inferMs > 0 ? r.timings.inferMs : latencyMs, detections: n, meanScore });
  }
}
