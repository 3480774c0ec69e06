/**
 * The privacy stage as the pipeline uses it: runs the privacy detector every `everyNFrames` frames
 * (recording coverage, success or failure), and routes every outgoing image through the gate. One
 * object, so that the pipeline cannot reach the publisher except through `submit()`.
 *
 * Two passes, so that small faces cost their tiles only where an image leaves: `observe()`, on the
 * frame path, runs the face model on the whole frame (one run; it keeps larger faces, plates and
 * their tracks between frames); `submit()` runs the full detection (face tiles, head bands, plates)
 * on the image itself, and the gate hides what either found. Tiles on every frame cost a 1080p
 * camera 9 model runs a frame (13 → 118 ms on the 2-core test machine), while alert snapshots,
 * the only images that leave, are rare.
 */
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { Detection, Frame } from '../types.js';
import { describeError } from '../util/errors.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { PrivacyCoverage } from './coverage.js';
import { PrivacyDetector } from './detector.js';
import { PrivacyGate, type GateOutcome, type ImagePurpose, type RedactedImageSink } from './gate.js';
import { PrivacyMetrics } from './metrics.js';
import { personsAt, type BoxesObservation } from './persons.js';
import { RawFrameRing } from './raw-ring.js';
import type { PrivacyConfig } from './schema.js';

export interface PrivacyStageOptions {
  config: PrivacyConfig;
  sink: RedactedImageSink;
  registry?: Registry;
  /** Builds the detector around the stage's coverage and metrics (tests); opened from the config's model paths otherwise. */
  createDetector?: (deps: { coverage: PrivacyCoverage; metrics: PrivacyMetrics }) => PrivacyDetector;
  logger?: Logger;
  intraOpThreads?: number;
  /** A privacy model run not answered within this time fails with E_INFER_TIMEOUT (the agent's detector.runTimeoutMs); 20 s when absent. */
  runTimeoutMs?: number;
  /**
   * Monotonic clock (ms) spacing the reopen attempts, as the link's: on the wall clock, an NTP step
   * back of an hour during the wait held the next attempt (and every snapshot) back an hour.
   */
  monotonicNow?: () => number;
}

/** Consecutive failed runs after which the detector is reopened; delay between attempts (doubling). */
const REOPEN_AFTER_FAILURES = 3;
const REOPEN_FIRST_MS = 5_000;
const REOPEN_MAX_MS = 60_000;
/**
 * The most frames whose boxes are kept per camera for the snapshots' head bands, whatever their age:
 * the bound on memory. Within it, those within gate.maxAgeMs are kept (15 at 30 fps by default; 60
 * at 120 fps, where the 32 kept before covered 267 ms and a person missed for longer lost its band),
 * as the coverage keeps its detections (MAX_OBSERVATIONS there).
 */
const MAX_BOX_FRAMES = 256;

export class PrivacyStage {
  readonly coverage: PrivacyCoverage;
  readonly metrics: PrivacyMetrics;
  readonly rawRing: RawFrameRing;
  private detector: PrivacyDetector | undefined;
  private gate: PrivacyGate | undefined;
  private readonly log: Logger;
  private readonly elapsed: () => number;
  private lastErrorCode: string | undefined;
  private consecutiveFailures = 0;
  private reopening: Promise<void> | undefined;
  private nextReopenAtMs = 0;
  private reopenDelayMs = REOPEN_FIRST_MS;
  private rawRingErrorLogged = false;
  private rawRingFailures = 0;
  /** Frames observed per camera (sourceId), for the everyNFrames cadence. */
  private readonly observed = new Map<string, number>();
  /**
   * Per camera: the main detector's boxes given with its recent frames (within gate.maxAgeMs of the
   * latest, at most MAX_BOX_FRAMES), for a snapshot: its own frame's for the plates, and the persons
   * of all of them, carried to its time, for the head bands.
   */
  private readonly recentBoxes = new Map<string, BoxesObservation[]>();

  constructor(private readonly opts: PrivacyStageOptions) {
    const { gate } = opts.config;
    this.coverage = new PrivacyCoverage({ maxAgeMs: gate.maxAgeMs, growFracPerSecond: gate.growFracPerSecond });
    this.metrics = new PrivacyMetrics(opts.registry);
    this.rawRing = new RawFrameRing(opts.config.rawRing);
    this.log = opts.logger ?? moduleLogger('privacy');
    this.elapsed = opts.monotonicNow ?? (() => performance.now());
  }

  /** Opens the privacy models. Safe twice. */
  async start(): Promise<void> {
    if (this.gate) return;
    const { config } = this.opts;
    this.detector = await this.openDetector();
    this.gate = new PrivacyGate({ gate: config.gate, redaction: config.redaction, coverage: this.coverage, metrics: this.metrics, sink: this.opts.sink, logger: this.log });
  }

  private async openDetector(): Promise<PrivacyDetector> {
    const deps = { coverage: this.coverage, metrics: this.metrics };
    return this.opts.createDetector ? this.opts.createDetector(deps) : PrivacyDetector.open(this.opts.config, { ...deps, intraOpThreads: this.opts.intraOpThreads, runTimeoutMs: this.opts.runTimeoutMs });
  }

  /**
   * A detector that fails frame after frame (its worker crashed: every later call fails the same
   * way) is reopened in the background, with a growing delay between attempts. Until then, and if
   * reopening fails, images stay withheld (fail closed); it used to stay so until the agent restarted.
   */
  private async reopen(): Promise<void> {
    this.nextReopenAtMs = this.elapsed() + this.reopenDelayMs;
    this.reopenDelayMs = Math.min(this.reopenDelayMs * 2, REOPEN_MAX_MS);
    try {
      const fresh = await this.openDetector();
      const old = this.detector;
      if (!this.gate) { await fresh.close(); return; } // stopped meanwhile
      this.detector = fresh;
      this.consecutiveFailures = 0;
      this.log.warn('privacy detector reopened after repeated failures');
      await old?.close().catch(() => undefined);
    } catch (err) {
      this.log.error({ err: describeError(err), retryInMs: Math.round(this.nextReopenAtMs - this.elapsed()) }, 'privacy detector could not be reopened; images stay withheld');
    }
  }

  /** Closes the models. Safe twice. */
  async stop(): Promise<void> {
    await this.reopening;
    const d = this.detector;
    this.detector = undefined;
    this.gate = undefined;
    await d?.close();
  }

  /**
   * Runs the privacy detector on this frame when it is due: on every `everyNFrames`-th frame this
   * stage sees from the frame's camera, counted here. The frame index skips the frames the capture
   * queue dropped, so `index % n` could miss every run (with n = 2, a pipeline that takes every
   * other frame saw odd indices only) or run on every frame. Faces are looked for on the whole
   * frame only (one model run, no tiles): `submit()` looks for small ones in the image that leaves.
   * A failure is recorded in the coverage (the gate then withholds) and logged once per error
   * code; it is not thrown.
   */
  async observe(frame: Frame, detections: readonly Detection[]): Promise<boolean> {
    if (!this.detector || !this.opts.config.enabled) return false;
    this.keepBoxes(frame, detections);
    const seen = this.observed.get(frame.sourceId) ?? 0;
    this.observed.set(frame.sourceId, seen + 1);
    if (seen % this.opts.config.everyNFrames !== 0) return false;
    return this.detect(frame, detections, { faceTiles: false });
  }

  private keepBoxes(frame: Frame, detections: readonly Detection[]): void {
    const maxAgeNs = this.opts.config.gate.maxAgeMs * 1e6;
    // By distance from this frame, not by order: a camera whose pts restarts drops the old ones.
    const kept = (this.recentBoxes.get(frame.sourceId) ?? []).filter((o) => Math.abs(o.ptsNs - frame.ptsNs) <= maxAgeNs);
    kept.push({ ptsNs: frame.ptsNs, boxes: detections });
    if (kept.length > MAX_BOX_FRAMES) kept.splice(0, kept.length - MAX_BOX_FRAMES);
    this.recentBoxes.set(frame.sourceId, kept);
  }

  /** One privacy detector run, recorded in the coverage; a failure is logged, counted towards reopening, and not thrown. */
  private async detect(frame: Frame, detections: readonly Detection[], opts: { faceTiles: boolean; persons?: readonly Detection[] }): Promise<boolean> {
    if (!this.detector) return false;
    try {
      await this.detector.run(frame, detections, opts);
      this.lastErrorCode = undefined;
      this.consecutiveFailures = 0;
      this.reopenDelayMs = REOPEN_FIRST_MS;
      return true;
    } catch (err) {
      const d = describeError(err);
      if (d.code !== this.lastErrorCode) this.log.error({ err: d }, 'privacy detector failed; images are withheld until it recovers');
      this.lastErrorCode = d.code;
      this.consecutiveFailures++;
      if (this.consecutiveFailures >= REOPEN_AFTER_FAILURES && !this.reopening && this.elapsed() >= this.nextReopenAtMs) {
        this.reopening = this.reopen().finally(() => { this.reopening = undefined; });
      }
      return false;
    }
  }

  /**
   * The only way an image leaves: redacted, or withheld/fully blurred when not covered. A covered
   * image (per-frame runs within gate.maxAgeMs, none failed since) first gets the full privacy
   * detection (face tiles; head bands for the persons `observe()` was given with this frame and with
   * the frames around it within gate.maxAgeMs, carried to its time, so that a person the main
   * detector missed in this frame still gets one; plates of this frame's vehicles), recorded in the
   * coverage, so that the gate hides what it found together with what the per-frame runs around it
   * found, tracked; if that run fails the image is withheld. With
   * `privacy.rawRing` enabled, the unredacted frame is also kept in the local ring (debugging what
   * the gate was given; it never leaves the box), after the gate has decided.
   */
  async submit(frame: Frame, purpose: ImagePurpose): Promise<GateOutcome> {
    if (!this.gate) return { released: false, reason: 'never', detail: 'the privacy stage is not started' };
    if (this.opts.config.enabled && this.coverage.at(frame.ptsNs, frame.sourceId).ok) {
      const { gate, faces } = this.opts.config;
      const recent = this.recentBoxes.get(frame.sourceId) ?? [];
      const own = recent.filter((o) => o.ptsNs === frame.ptsNs).at(-1);
      const persons = personsAt(recent, frame.ptsNs, { maxAgeMs: gate.maxAgeMs, growFracPerSecond: gate.growFracPerSecond, band: faces.headBand });
      await this.detect(frame, own?.boxes ?? [], { faceTiles: true, persons });
    }
    const outcome = await this.gate.submit(frame, purpose);
    if (this.rawRing.enabled) {
      try {
        await this.rawRing.save(frame);
      } catch (err) {
        const d = describeError(err);
        if (!this.rawRingErrorLogged) this.log.warn({ err: d, dir: this.opts.config.rawRing.dir }, 'cannot write the raw frame ring; frames are not kept (the gate is not affected)');
        this.rawRingErrorLogged = true;
        this.rawRingFailures++;
      }
    }
    return outcome;
  }

  /** Frames the raw ring could not write (enabled but failing: a full disk, a read-only dir). */
  get rawRingWriteFailures(): number {
    return this.rawRingFailures;
  }
}
