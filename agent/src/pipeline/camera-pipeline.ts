/**
 * One camera's pipeline: capture → schedule/detect → track → rules → sinks. Capture runs ahead
 * through its bounded queue; everything after it handles one frame at a time, so a slow detector
 * shows up as counted capture drops (live sources) or back-pressure (files), never as an unbounded
 * backlog. Alerts and per-frame results leave through injected sinks (publisher, NDJSON writer,
 * privacy gate), so the pipeline itself has no idea where they go.
 */
import { performance } from 'node:perf_hooks';
import type { Detection, Frame, Point } from '../types.js';
import type { Rule } from '../rules/schema.js';
import { GstFrameSource, type FrameSourceStats } from '../capture/gst-source.js';
import type { BoardCapture } from '../capture/pipelines.js';
import type { CameraConfig } from '../config/schema.js';
import type { ScheduleConfig } from '../schedule/schema.js';
import type { TrackerConfig } from '../track/schema.js';
import { TrackingStage } from '../schedule/tracking-stage.js';
import { RulesEngine } from '../rules/engine.js';
import type { AlertEvent } from '../rules/events.js';
import type { TrackedObject } from '../track/types.js';
import type { Detector } from '../infer/detector.js';
import { StageLatencies } from './latency.js';
import { maskUrlCredentials } from '../util/mask-url.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { ruleShapeProblem } from '../config/rule-geometry.js';
import { ModelOutputError } from '../util/errors.js';

export interface FrameResult {
  cameraId: string;
  frame: Frame;
  /** Detector output for this frame; undefined when the detector did not run on it. */
  detections: Detection[] | undefined;
  tracks: TrackedObject[];
  alerts: AlertEvent[];
}

export interface PipelineSinks {
  /** Called for every processed frame, in order. May be async: the next frame waits for it. */
  onFrame?(result: FrameResult): void | Promise<void>;
  /** Called for each alert (after onFrame of its frame). */
  onAlert?(alert: AlertEvent, frame: Frame): void | Promise<void>;
}

export interface CameraPipelineOptions {
  camera: CameraConfig;
  detector: Pick<Detector, 'detectTimed'> & { prefetch?(image: Frame): void };
  schedule: ScheduleConfig;
  tracker: TrackerConfig;
  labels?: string[];
  board?: BoardCapture;
  sinks?: PipelineSinks;
  latencies?: StageLatencies;
  /** Where the pipeline logs (default: the process logger, module "pipeline"). */
  log?: Logger;
  /** Frame source; injected by tests (defaults to GStreamer). */
  source?: { frames(signal?: AbortSignal): AsyncIterable<Frame>; stats: FrameSourceStats };
}

/**
 * `starting`: no frame yet; `up`: frames arrive; `reconnecting`: its source failed since the last
 * frame and is being restarted; `failed`: its source gave up (reconnect.maxRetries spent, or a fault
 * no restart mends); `ended`: its stream finished.
 */
export type CameraStatus = 'starting' | 'up' | 'reconnecting' | 'failed' | 'ended';

export interface CameraStats {
  cameraId: string;
  status: CameraStatus;
  framesIn: number;
  processed: number;
  detected: number;
  dropped: { capture: number };
  restarts: number;
  alerts: number;
  /**
   * Detector runs whose output was broken (NaN scores or boxes: E_MODEL_OUTPUT), each logged at the
   * 1st, 10th, 100th... and answered with no detections (the frame's tracks predicted); present when > 0.
   */
  brokenRuns?: number;
  /** Why the camera failed, or its source's last error (credentials in URLs masked). */
  lastError?: string;
  /** Size of its last frame, source pixels. */
  width?: number;
  height?: number;
}

export class CameraPipeline {
  readonly latencies: StageLatencies;
  readonly tracking: TrackingStage;
  rules: RulesEngine;
  private readonly source: NonNullable<CameraPipelineOptions['source']>;
  private processed = 0;
  private detected = 0;
  private alerts = 0;
  private brokenRuns = 0;
  /** The frame of the first broken run in a row (undefined after a good one), and whether that streak reset the tracks. */
  private brokenStreak: { since: number; reset: boolean } | undefined;
  private pendingTimings: { preprocessMs: number; inferMs: number; decodeMs: number } | undefined;
  private lastDetections: Detection[] | undefined;
  /** Where the run stands; stats() tells `starting`, `up` and `reconnecting` apart while it runs. */
  private status: 'running' | 'failed' | 'ended' = 'running';
  /** The last frame's size and when it was captured, and the source's counts then. */
  private last: { width: number; height: number; capturedAtNs: number; segment: number | undefined; restarts: number; errors: number } | undefined;
  private readonly log: Logger;
  private readonly restartsAtDelivery = new WeakMap<Frame, number>();
  /** The error its source gave up with (run() rejected with it); undefined while it runs or after a clean end. */
  private sourceFailure: Error | undefined;

  constructor(private readonly opts: CameraPipelineOptions) {
    this.latencies = opts.latencies ?? new StageLatencies();
    this.log = opts.log ?? moduleLogger('pipeline');
    this.source = opts.source ?? new GstFrameSource({ config: opts.camera.source, board: opts.board });
    this.tracking = new TrackingStage({
      detect: async (frame) => {
        let r: Awaited<ReturnType<typeof opts.detector.detectTimed>>;
        try {
          r = await opts.detector.detectTimed(frame);
        } catch (err) {
          if (!(err instanceof ModelOutputError)) throw err;
          this.brokenRun(frame, err);
          return null;
        }
        this.brokenStreak = undefined;
        this.pendingTimings = r.timings;
        this.lastDetections = r.detections;
        return r.detections;
      },
      schedule: opts.schedule,
      tracker: opts.tracker,
      labels: opts.labels && opts.labels.length > 0 ? opts.labels : undefined,
    });
    this.rules = new RulesEngine({ config: opts.camera.rules });
  }

  /**
   * Replaces the camera's rules between two frames (live reload). Rule state (who is inside which
   * zone) starts afresh, so an object already inside a new zone is reported once as it is next seen.
   */
  setRules(engine: RulesEngine): void {
    this.rules = engine;
  }

  get cameraId(): string {
    return this.opts.camera.source.id;
  }

  /** The error the camera's source gave up with (the camera is down for the rest of the run), if it did. */
  get failure(): Error | undefined {
    return this.sourceFailure;
  }

  /**
   * Runs until end of stream, `maxFrames`, or `signal` aborts. Capture failures reject, and `failure`
   * then holds the error (other errors, of the detector or a sink, reject without it).
   */
  async run(signal?: AbortSignal): Promise<CameraStats> {
    const { sinks, detector } = this.opts;
    // One frame of look-ahead: while frame N is processed, frame N+1 is already asked of the capture
    // queue, and when the detector is due on every frame its resize starts at once, overlapping
    // N's inference (the serial resize was most of the gap to bare ONNX Runtime speed, bench 1).
    const frames = this.source.frames(signal)[Symbol.asyncIterator]();
    // The source's restart count as each frame is handed over, not as it is processed: with the
    // look-ahead, the source has moved on to the next connection while the last frame of the old one
    // is still being processed.
    const next = () => frames.next().then((step) => {
      if (!step.done) this.restartsAtDelivery.set(step.value, this.source.stats.restarts);
      return step;
    });
    let upcoming = next();
    let finished = false;
    const fromSource = async (): Promise<IteratorResult<Frame>> => {
      try {
        return await upcoming;
      } catch (err) {
        this.sourceFailure = err instanceof Error ? err : new Error(String(err));
        this.status = 'failed';
        throw err;
      }
    };
    try {
      for (;;) {
        const step = await fromSource();
        if (step.done) break;
        const frame = step.value;
        upcoming = next();
        if (detector.prefetch) {
          void upcoming.then((n) => {
            if (!n.done && this.tracking.scheduler.interval() === 1) detector.prefetch?.(n.value);
          }, () => undefined);
        }
        await this.processFrame(frame, sinks);
      }
      finished = true;
      this.status = 'ended';
    } finally {
      // On an error the runner aborts the signal, which ends the source; do not wait for it here.
      if (!finished) void frames.return?.(undefined);
    }
    return this.stats();
  }

  private async processFrame(frame: Frame, sinks: PipelineSinks | undefined): Promise<void> {
    this.noteConnection(frame);
    const t0 = performance.now();
    this.pendingTimings = undefined;
    this.lastDetections = undefined;
    const tracked = await this.tracking.process(frame);
    const t1 = performance.now();
    const timings = this.pendingTimings as { preprocessMs: number; inferMs: number; decodeMs: number } | undefined;
    if (timings) {
      this.detected++;
      this.latencies.record('preprocess', timings.preprocessMs);
      this.latencies.record('infer', timings.inferMs);
      this.latencies.record('decode', timings.decodeMs);
    }
    // detectMs is 0 on a frame the detector did not run on, and counts a broken run's time too.
    this.latencies.record('track', t1 - t0 - tracked.detectMs);
    const alerts = this.rules.process({
      cameraId: this.cameraId, frameIndex: frame.index, ptsNs: frame.ptsNs, tracks: tracked.tracks,
      removed: this.tracking.tracker.removedTracks(), picture: { width: frame.width, height: frame.height },
    });
    const t2 = performance.now();
    this.latencies.record('rules', t2 - t1);
    this.alerts += alerts.length;
    await sinks?.onFrame?.({ cameraId: this.cameraId, frame, detections: this.lastDetections, tracks: tracked.tracks, alerts });
    for (const a of alerts) await sinks?.onAlert?.(a, frame);
    const t3 = performance.now();
    this.latencies.record('publish', t3 - t2);
    // Capture → done, including the time the frame waited in the capture queue.
    this.latencies.record('total', (Number(process.hrtime.bigint()) - frame.capturedAtNs) / 1e6);
    this.processed++;
  }

  /**
   * Before each frame: on the first frame of a new capture connection (its `segment` changed, or, from
   * a source that does not number them, its restart count grew), says the camera is back and at what
   * size; warns when the size changed (rules are in source pixels of the picture they were drawn on)
   * and, on the first frame and at each size change, names the rules that lie outside the picture.
   * A new connection also starts tracking and rule state afresh: only the timestamp advanced across
   * the gap, so a person seen 2 s before a 2 min outage and someone at the same spot after it made one
   * dwell of 122 s. (Counted by restarts, a frame still in the capture queue from the old connection
   * when the count grew is taken for the new one; the source's `segment` is exact.)
   */
  private noteConnection(frame: Frame): void {
    const s = this.source.stats;
    const prev = this.last;
    const restarts = this.restartsAtDelivery.get(frame) ?? s.restarts;
    this.last = { width: frame.width, height: frame.height, capturedAtNs: frame.capturedAtNs, segment: frame.segment, restarts, errors: s.errors };
    const size = { width: frame.width, height: frame.height };
    if (!prev) {
      this.warnRulesOutside(size, 'wholly');
      return;
    }
    const reconnected = frame.segment !== undefined && prev.segment !== undefined ? frame.segment !== prev.segment : restarts > prev.restarts;
    const resized = frame.width !== prev.width || frame.height !== prev.height;
    if (reconnected) {
      this.tracking.reset();
      this.rules.resetTracks();
      const offlineMs = Math.max(0, Math.round((frame.capturedAtNs - prev.capturedAtNs) / 1e6));
      this.log.info({ camera: this.cameraId, width: frame.width, height: frame.height, restarts: s.restarts, offlineMs }, `camera ${this.cameraId} back: ${frame.width}×${frame.height}`);
    }
    if (resized) {
      this.log.warn({ camera: this.cameraId, width: frame.width, height: frame.height, previous: { width: prev.width, height: prev.height } },
        `camera ${this.cameraId} now delivers ${frame.width}×${frame.height} pictures, not ${prev.width}×${prev.height}: rule coordinates are source pixels of the picture they were drawn on; check its zones and lines`);
      this.warnRulesOutside(size, 'partly');
    }
  }

  /** Warns for each rule that lies wholly (or, with 'partly', even partly) outside a picture of `size`. */
  private warnRulesOutside(size: { width: number; height: number }, extent: 'wholly' | 'partly'): void {
    const inside = (p: Point) => p.x >= 0 && p.y >= 0 && p.x <= size.width && p.y <= size.height;
    for (const rule of this.rules.ruleList) {
      // A line is judged as the flat zone it bounds: wholly outside when it never meets the picture.
      const shape: Rule = rule.type === 'line' ? { ...rule, type: 'zone', polygon: [rule.from, rule.to, rule.from] } as Rule : rule;
      const problem = ruleShapeProblem(shape, size);
      const points = rule.type === 'line' ? [rule.from, rule.to] : rule.polygon;
      if (!problem && (extent === 'wholly' || points.every(inside))) continue;
      this.log.warn({ camera: this.cameraId, rule: rule.id, width: size.width, height: size.height },
        `rule ${rule.id} of camera ${this.cameraId} lies ${problem ? 'wholly' : 'partly'} outside its ${size.width}×${size.height} picture` +
        (problem ? ': it cannot fire' : ': nothing is seen in the part outside'));
    }
  }

  /**
   * A run whose output was broken (the committed model: a new one on trial is answered by the previous
   * one, and rolled back). It used to read as "nothing in the picture", silently: now the frame's
   * tracks are predicted as between two detections, and the run counted and logged, but the camera
   * goes on: one broken frame is no reason to stop every camera's alerts (a detector error ends the
   * run). Broken for longer than tracks are predicted (tracker.maxPredictFrames), the detector is
   * blind as across a camera gap, and is treated so: tracks and their rule state are dropped once
   * (no exit is judged across it), instead of tracks held unmatched, never lost, for as long as it lasts.
   */
  private brokenRun(frame: Frame, err: Error): void {
    this.brokenRuns += 1;
    const n = this.brokenRuns;
    if (/^10*$/.test(String(n))) {
      this.log.error({ camera: this.cameraId, frame: frame.index, brokenRuns: n, code: 'E_MODEL_OUTPUT' },
        `the detector's output was broken on ${n === 1 ? 'a frame' : `${n} frames`} of camera ${this.cameraId} (logged at 1, 10, 100...; counted in brokenRuns): ${err.message}`);
    }
    const streak = (this.brokenStreak ??= { since: frame.index, reset: false });
    if (!streak.reset && frame.index - streak.since >= this.tracking.maxPredictFrames) {
      streak.reset = true;
      this.tracking.reset();
      this.rules.resetTracks();
      this.log.warn({ camera: this.cameraId, frame: frame.index, since: streak.since },
        `the detector's output has been broken since frame ${streak.since} of camera ${this.cameraId}: its tracks and their rule state are dropped, as across a camera gap`);
    }
  }

  stats(): CameraStats {
    const s = this.source.stats;
    const lastError = this.sourceFailure?.message ?? s.lastError;
    const last = this.last;
    // A failure since the last frame (or before the first) that the source has not given up on: it is restarting.
    const status: CameraStatus = this.status !== 'running' ? this.status
      : s.errors > (last?.errors ?? 0) ? 'reconnecting' : last ? 'up' : 'starting';
    return {
      cameraId: this.cameraId, status, framesIn: s.framesIn, processed: this.processed, detected: this.detected,
      dropped: { capture: s.dropped }, restarts: s.restarts, alerts: this.alerts,
      ...(this.brokenRuns > 0 ? { brokenRuns: this.brokenRuns } : {}),
      ...(lastError ? { lastError: maskUrlCredentials(lastError) } : {}),
      ...(last ? { width: last.width, height: last.height } : {}),
    };
  }
}
