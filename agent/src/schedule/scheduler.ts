/**
 * Decides, frame by frame, whether the detector runs. Fixed mode detects every k-th frame (as
 * DeepStream's nvinfer `interval` property does). Adaptive mode picks k from the measured inference
 * time and a per-frame latency budget: if one inference takes 90 ms and each frame may spend 33 ms of
 * detector time on average, k = ceil(90 / 33) = 3. A motion gate, when given a result, skips detection
 * while nothing moves (up to `maxIdleFrames`) and brings it forward as soon as something moves.
 */
import { DEFAULT_SCHEDULE_CONFIG, type ScheduleConfig } from './schema.js';

export type ScheduleReason = 'interval' | 'motion' | 'idle-refresh' | 'first-frame' | 'skip-interval' | 'skip-no-motion';

export interface ScheduleDecision {
  detect: boolean;
  reason: ScheduleReason;
  /** Current detection interval k. */
  interval: number;
}

export interface SchedulerStats {
  frames: number;
  detections: number;
  skippedNoMotion: number;
  motionTriggered: number;
  interval: number;
  inferenceMsAvg: number | undefined;
}

export class DetectionScheduler {
  private readonly cfg: ScheduleConfig;
  private lastDetectFrame: number | undefined;
  private inferMsAvg: number | undefined;
  private counts = { frames: 0, detections: 0, skippedNoMotion: 0, motionTriggered: 0 };

  constructor(config: Partial<ScheduleConfig> = {}) {
    this.cfg = { ...DEFAULT_SCHEDULE_CONFIG, ...config };
  }

  /** Current k. */
  interval(): number {
    const c = this.cfg;
    if (c.mode === 'fixed') return c.interval;
    if (this.inferMsAvg === undefined) return c.minInterval;
    const k = Math.ceil(this.inferMsAvg / c.latencyBudgetMs);
    return Math.min(c.maxInterval, Math.max(c.minInterval, k));
  }

  /** Feeds back how long one detector call took, in ms (used by adaptive mode). */
  recordInference(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) return;
    const a = this.cfg.latencyEwmaAlpha;
    this.inferMsAvg = this.inferMsAvg === undefined ? latencyMs : a * latencyMs + (1 - a) * this.inferMsAvg;
  }

  /**
   * @param frameIndex index of the frame in its source (increasing)
   * @param motion result of the motion gate for this frame; undefined when no gate runs
   */
  decide(frameIndex: number, motion?: boolean): ScheduleDecision {
    this.counts.frames++;
    const k = this.interval();
    const decision = this.choose(frameIndex, k, motion);
    if (decision.detect) {
      this.lastDetectFrame = frameIndex;
      this.counts.detections++;
      if (decision.reason === 'motion') this.counts.motionTriggered++;
    } else if (decision.reason === 'skip-no-motion') this.counts.skippedNoMotion++;
    return decision;
  }

  stats(): SchedulerStats {
    return { ...this.counts, interval: this.interval(), inferenceMsAvg: this.inferMsAvg };
  }

  private choose(frameIndex: number, k: number, motion: boolean | undefined): ScheduleDecision {
    if (this.lastDetectFrame === undefined) return { detect: true, reason: 'first-frame', interval: k };
    const since = frameIndex - this.lastDetectFrame;
    if (motion === undefined) {
      return since >= k ? { detect: true, reason: 'interval', interval: k } : { detect: false, reason: 'skip-interval', interval: k };
    }
    if (!motion) {
      return since >= this.cfg.maxIdleFrames
        ? { detect: true, reason: 'idle-refresh', interval: k }
        : { detect: false, reason: 'skip-no-motion', interval: k };
    }
    // Something moves: detect as soon as the interval allows.
    return since >= k ? { detect: true, reason: 'motion', interval: k } : { detect: false, reason: 'skip-interval', interval: k };
  }
}
