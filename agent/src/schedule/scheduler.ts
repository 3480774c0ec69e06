/**
 * Decides, frame by frame, whether the detector runs. Fixed mode detects every k-th frame (as
 * DeepStream's nvinfer `interval` property does). Adaptive mode picks k from the measured inference
 * time and a per-frame latency budget: if one inference takes 90 ms and each frame may spend 33 ms of
 * detector time on average, k = ceil(90 / 33) = 3. A motion gate, when given a result, skips detection
 * while nothing moves (up to `maxIdleFrames`) and brings it forward as soon as something moves.
 * Motion is remembered until the detector has seen it: movement on a frame that the interval skipped,
 * followed by still frames (a person who walked in and stopped, or who left the picture), still gets
 * its detection once k frames have passed; otherwise the tracker held its old boxes until the idle
 * refresh (150 frames by default) and a person who had left was reported, still there, for 5 s.
 * Likewise a track seen once (tentative) gets the detection that confirms or drops it.
 */
import { DEFAULT_SCHEDULE_CONFIG, type ScheduleConfig } from './schema.js';

export type ScheduleReason = 'interval' | 'motion' | 'confirm' | 'idle-refresh' | 'first-frame' | 'skip-interval' | 'skip-no-motion';

/** What the tracker needs from the schedule, given with each frame. */
export interface ScheduleHints {
  /** The tracker holds a track seen once, which only another detection confirms (or drops). */
  tentativeTracks?: boolean;
}

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
  /** The motion gate saw movement on a frame after the last detection. */
  private motionSinceDetect = false;
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
   * @param hints the tracker's state (tentative tracks waiting for a detection)
   */
  decide(frameIndex: number, motion?: boolean, hints: ScheduleHints = {}): ScheduleDecision {
    this.counts.frames++;
    const k = this.interval();
    if (motion === true) this.motionSinceDetect = true;
    const decision = this.choose(frameIndex, k, motion, hints.tentativeTracks === true);
    if (decision.detect) {
      this.lastDetectFrame = frameIndex;
      this.motionSinceDetect = false;
      this.counts.detections++;
      if (decision.reason === 'motion') this.counts.motionTriggered++;
    } else if (decision.reason === 'skip-no-motion') this.counts.skippedNoMotion++;
    return decision;
  }

  stats(): SchedulerStats {
    return { ...this.counts, interval: this.interval(), inferenceMsAvg: this.inferMsAvg };
  }

  private choose(frameIndex: number, k: number, motion: boolean | undefined, tentative: boolean): ScheduleDecision {
    if (this.lastDetectFrame === undefined) return { detect: true, reason: 'first-frame', interval: k };
    const since = frameIndex - this.lastDetectFrame;
    if (motion === undefined) {
      return since >= k ? { detect: true, reason: 'interval', interval: k } : { detect: false, reason: 'skip-interval', interval: k };
    }
    // Something moves: detect as soon as the interval allows.
    if (motion) return since >= k ? { detect: true, reason: 'motion', interval: k } : { detect: false, reason: 'skip-interval', interval: k };
    // This frame is still, but what moved since the last detection (on frames the interval skipped)
    // or a track that waits for confirmation still needs the detector once the interval allows.
    if (since >= k && this.motionSinceDetect) return { detect: true, reason: 'motion', interval: k };
    if (since >= k && tentative) return { detect: true, reason: 'confirm', interval: k };
    return since >= this.cfg.maxIdleFrames
      ? { detect: true, reason: 'idle-refresh', interval: k }
      : { detect: false, reason: 'skip-no-motion', interval: k };
  }
}
