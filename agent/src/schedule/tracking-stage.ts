/**
 * The scheduler → detector → tracker step of the per-camera pipeline (DESIGN.md "The agent
 * pipeline"): for each frame, the motion gate and the schedule decide whether the detector runs;
 * its latency feeds the adaptive interval; the tracker updates (or only predicts), so every frame
 * leaves with boxes, each marked detected or predicted. The detector is injected as a function.
 */
import { performance } from 'node:perf_hooks';
import type { Detection, Frame } from '../types.js';
import { ByteTracker } from '../track/tracker.js';
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from '../track/schema.js';
import type { TrackedObject } from '../track/types.js';
import { MotionGate } from './motion.js';
import { DetectionScheduler, type ScheduleDecision } from './scheduler.js';
import { DEFAULT_SCHEDULE_CONFIG, type MotionGateConfig, type ScheduleConfig } from './schema.js';

export interface TrackingStageOptions {
  /** The frame's detections; null when the run cannot be used (a broken output): its tracks are predicted. */
  detect: (frame: Frame) => Promise<Detection[] | null>;
  schedule?: Partial<Omit<ScheduleConfig, 'motion'>> & { motion?: Partial<MotionGateConfig> };
  tracker?: Partial<TrackerConfig>;
  /** Keep only these labels before tracking; all when absent. */
  labels?: string[];
  /** Injected for tests; defaults to performance.now. */
  nowMs?: () => number;
}

export interface TrackingStageResult {
  frameIndex: number;
  tracks: TrackedObject[];
  decision: ScheduleDecision;
  /** Motion gate fraction of changed blocks; undefined when the gate is off. */
  changedFraction: number | undefined;
  /** Detector time for this frame, ms (0 when it did not run). */
  detectMs: number;
}

export class TrackingStage {
  readonly scheduler: DetectionScheduler;
  readonly tracker: ByteTracker;
  /** Frames a track without a matching detection is still reported (the tracker's, at least the longest interval - 1). */
  readonly maxPredictFrames: number;
  private readonly gate: MotionGate | undefined;
  private readonly opts: TrackingStageOptions;
  private readonly nowMs: () => number;
  /** The detector runs on the next frame whatever the schedule says (after reset()). */
  private detectNext = false;

  constructor(opts: TrackingStageOptions) {
    const schedule = { ...DEFAULT_SCHEDULE_CONFIG, ...opts.schedule, motion: { ...DEFAULT_SCHEDULE_CONFIG.motion, ...opts.schedule?.motion } };
    this.opts = opts;
    this.scheduler = new DetectionScheduler(schedule);
    // Between two detections k frames apart a track is predicted for k - 1 frames; reported for only
    // maxPredictFrames of them, every box blinked out before each detection (interval 20: 4 frames in
    // 20, and an occupancy alert each time the boxes came back). The prediction covers the interval.
    const longest = schedule.mode === 'fixed' ? schedule.interval : schedule.maxInterval;
    const maxPredictFrames = Math.max(opts.tracker?.maxPredictFrames ?? DEFAULT_TRACKER_CONFIG.maxPredictFrames, longest - 1);
    this.maxPredictFrames = maxPredictFrames;
    this.tracker = new ByteTracker({ ...opts.tracker, maxPredictFrames });
    this.gate = schedule.motion.enabled ? new MotionGate(schedule.motion) : undefined;
    this.nowMs = opts.nowMs ?? (() => performance.now());
  }

  /**
   * Starts over as on a camera's first frame, for a new capture connection: no tracks, no motion
   * reference, and the detector runs on the next frame (whose tracks are confirmed at once, as on the
   * first frame), so what is in the picture is known again without waiting out the interval.
   */
  reset(): void {
    this.tracker.reset();
    this.gate?.reset();
    this.detectNext = true;
  }

  async process(frame: Frame): Promise<TrackingStageResult> {
    const m = this.gate?.check(frame);
    let decision = this.scheduler.decide(frame.index, m?.motion, { tentativeTracks: this.tracker.hasTentative() });
    if (this.detectNext && !decision.detect) decision = { ...decision, detect: true, reason: 'first-frame' };
    this.detectNext = false;
    let detections: Detection[] | null = null;
    let detectMs = 0;
    if (decision.detect) {
      const t0 = this.nowMs();
      detections = await this.opts.detect(frame);
      detectMs = this.nowMs() - t0;
      this.scheduler.recordInference(detectMs);
      const labels = this.opts.labels;
      if (labels && detections) detections = detections.filter((d) => labels.includes(d.label));
    }
    // Nothing moved: the last boxes still hold; predicting them onward would drift still objects.
    const tracks = decision.reason === 'skip-no-motion' ? this.tracker.hold(frame.index) : this.tracker.update(frame.index, detections);
    return { frameIndex: frame.index, tracks, decision, changedFraction: m?.changedFraction, detectMs };
  }
}
