/**
 * Agent metrics: one prom-client registry per agent (never the global one, so several agents can
 * live in one test process) that backs both the Prometheus endpoint and the periodic MQTT telemetry.
 * The pipeline calls recordFrame/recordStage/recordDetections/observeFrameStats; `start()` publishes
 * a TelemetryPayload every `intervalMs` (10 s by default) through the given `publish` function.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import type { Detection, RgbImage } from '../types.js';
import { TELEMETRY_MAX_CAMERAS, type CameraTelemetry, type TelemetryPayload } from '../protocol/payloads.js';
import { describeError } from '../util/errors.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { DriftMonitor, frameStats, type DriftOptions } from './drift.js';
import { CpuMeter, memorySample, readTemperaturesC } from './system.js';

export type FrameEvent =
  | { kind: 'in' }
  | { kind: 'processed'; /** true when the detector ran on it (not tracker-only) */ detected?: boolean }
  | { kind: 'dropped'; reason: string };

export interface TelemetryOptions {
  intervalMs?: number;
  drift?: DriftOptions;
  /** Sample input statistics every n-th call of observeFrameStats (1 = every frame). */
  frameStatsEvery?: number;
  thermalRoot?: string;
  outboxStats?: () => { pending: number; droppedFull: number };
  /** Extra labels on every metric, e.g. { device: 'cam-01' }. */
  defaultLabels?: Record<string, string>;
  /** Also collect prom-client's process/nodejs default metrics. */
  processMetrics?: boolean;
  /** Wall clock (ms since the epoch) for the payload's `ts`. */
  now?: () => number;
  /**
   * Monotonic clock (ms) for spans (uptimeS, the detectFps interval), as the link's: an NTP step of
   * the wall clock backwards made uptimeS negative (every message refused by the protocol for as long
   * as the step) and the interval's detectFps hundreds of thousands.
   */
  monotonicNow?: () => number;
  logger?: Logger;
}

const STAGE_PERCENTILES = [0.5, 0.95, 0.99];

export class Telemetry {
  readonly registry = new Registry();
  readonly drift: DriftMonitor;
  private readonly framesIn: Counter<string>;
  private readonly framesProcessed: Counter<string>;
  private readonly framesDropped: Counter<'reason'>;
  private readonly detections: Counter<'class'>;
  private readonly stageMs: Summary<'stage'>;
  private readonly driftPsi: Gauge<'signal'>;
  private readonly driftFlag: Gauge<string>;
  private readonly loopP99: Gauge<string>;
  private readonly loopDelay: IntervalHistogram;
  private readonly cpu = new CpuMeter();
  /** On the monotonic clock (`monotonicNow`), as is lastSnapshotAtMs. */
  private readonly startedAtMs: number;
  private readonly now: () => number;
  private readonly elapsed: () => number;
  private readonly log: Logger;
  private readonly counts = { in: 0, processed: 0, detected: 0, dropped: {} as Record<string, number> };
  private readonly stageCounts: Record<string, number> = {};
  private detectedAtLastSnapshot = 0;
  private lastSnapshotAtMs: number;
  private models: Record<string, string> = {};
  private timer: NodeJS.Timeout | undefined;
  private statsCalls = 0;
  private loopStarted = false;
  private captureSeen = { in: 0, dropped: 0 };
  /**
   * Pulled at each snapshot and scrape: the capture's cumulative frame totals (all cameras; what is
   * new since the last pull is counted as frames in / dropped by capture) and the running model
   * versions. Set by whoever owns the pipeline (FleetAttachment.attachRunner).
   */
  sources: {
    captureTotals?: () => { in: number; dropped: number };
    models?: () => Record<string, string>;
    /** Each camera as it is now (the payload's `cameras`, and ef_camera_up / ef_camera_restarts_total). */
    cameras?: () => CameraTelemetry[];
    /** Detector runs with a broken output (E_MODEL_OUTPUT) per camera, since the start (ef_detector_broken_runs_total). */
    brokenRuns?: () => Array<{ camera: string; runs: number }>;
  } = {};
  private camerasCapWarned = false;

  constructor(private readonly opts: TelemetryOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.elapsed = opts.monotonicNow ?? (() => performance.now());
    this.startedAtMs = this.elapsed();
    this.lastSnapshotAtMs = this.startedAtMs;
    this.log = opts.logger ?? moduleLogger('telemetry');
    this.drift = new DriftMonitor(opts.drift);
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    const r = [this.registry];
    const sync = (): void => this.syncCapture();
    this.framesIn = new Counter({ name: 'ef_frames_in_total', help: 'Frames received from capture', registers: r, collect: sync });
    this.framesProcessed = new Counter({ name: 'ef_frames_processed_total', help: 'Frames that went through the pipeline', registers: r });
    this.framesDropped = new Counter({ name: 'ef_frames_dropped_total', help: 'Frames dropped, by reason', labelNames: ['reason'], registers: r, collect: sync });
    this.detections = new Counter({ name: 'ef_detections_total', help: 'Detections, by class', labelNames: ['class'], registers: r });
    this.stageMs = new Summary({
      name: 'ef_stage_latency_ms', help: 'Per-stage latency in milliseconds (sliding 60 s window)', labelNames: ['stage'],
      percentiles: STAGE_PERCENTILES, maxAgeSeconds: 60, ageBuckets: 5, registers: r,
    });
    this.driftPsi = new Gauge({ name: 'ef_drift_psi', help: 'Population stability index against the baseline window', labelNames: ['signal'], registers: r });
    this.driftFlag = new Gauge({ name: 'ef_drift_flagged', help: '1 when any drift signal is past its threshold', registers: r });
    this.loopP99 = new Gauge({ name: 'ef_event_loop_delay_p99_ms', help: 'Event-loop delay p99 over the last telemetry interval', registers: r });
    const cameras = () => this.sources.cameras?.() ?? [];
    new Gauge({
      name: 'ef_camera_up', help: '1 while the camera delivers frames; 0 while it starts, reconnects, has failed or has ended', labelNames: ['camera'], registers: r,
      collect() { this.reset(); for (const c of cameras()) this.set({ camera: c.id }, c.status === 'up' ? 1 : 0); },
    });
    new Counter({
      name: 'ef_camera_restarts_total', help: 'Restarts of each camera\'s capture after an error', labelNames: ['camera'], registers: r,
      collect() { this.reset(); for (const c of cameras()) this.inc({ camera: c.id }, c.restarts); },
    });
    const broken = () => this.sources.brokenRuns?.() ?? [];
    new Counter({
      name: 'ef_detector_broken_runs_total', help: 'Detector runs whose output was broken (NaN scores or boxes), answered with no detections', labelNames: ['camera'], registers: r,
      collect() { this.reset(); for (const c of broken()) this.inc({ camera: c.camera }, c.runs); },
    });
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  recordFrame(ev: FrameEvent): void {
    switch (ev.kind) {
      case 'in': this.counts.in += 1; this.framesIn.inc(); break;
      case 'processed':
        this.counts.processed += 1; this.framesProcessed.inc();
        if (ev.detected) this.counts.detected += 1;
        break;
      case 'dropped':
        this.counts.dropped[ev.reason] = (this.counts.dropped[ev.reason] ?? 0) + 1;
        this.framesDropped.inc({ reason: ev.reason });
        break;
    }
  }

  /** Counts what the capture took in and dropped since the last pull (see `sources`). */
  private syncCapture(): void {
    const t = this.sources.captureTotals?.();
    if (!t) return;
    const dIn = t.in - this.captureSeen.in, dDrop = t.dropped - this.captureSeen.dropped;
    if (dIn > 0) { this.counts.in += dIn; this.framesIn.inc(dIn); }
    if (dDrop > 0) {
      this.counts.dropped.capture = (this.counts.dropped.capture ?? 0) + dDrop;
      this.framesDropped.inc({ reason: 'capture' }, dDrop);
    }
    this.captureSeen = { in: Math.max(t.in, this.captureSeen.in), dropped: Math.max(t.dropped, this.captureSeen.dropped) };
  }

  recordStage(stage: string, latencyMs: number): void {
    this.stageMs.observe({ stage }, latencyMs);
    this.stageCounts[stage] = (this.stageCounts[stage] ?? 0) + 1;
  }

  recordDetections(dets: readonly Pick<Detection, 'score' | 'label'>[]): void {
    for (const d of dets) this.detections.inc({ class: d.label });
    this.drift.observeDetections(dets);
  }

  /** Input brightness/contrast for drift; sampled every `frameStatsEvery` calls. */
  observeFrameStats(image: RgbImage): void {
    this.statsCalls += 1;
    if ((this.statsCalls - 1) % (this.opts.frameStatsEvery ?? 1) !== 0) return;
    this.drift.observeFrameStats(frameStats(image));
  }

  setModelVersions(models: Record<string, string>): void {
    this.models = { ...models };
  }

  /** Builds the telemetry payload and resets the interval measures (event-loop delay, fps window). */
  async snapshot(): Promise<TelemetryPayload> {
    const nowMs = this.now();
    const monoMs = this.elapsed();
    this.syncCapture();
    const models = this.sources.models?.();
    if (models) this.models = { ...models };
    const stages: TelemetryPayload['stages'] = {};
    const metric = await this.stageMs.get();
    for (const v of metric.values) {
      const labels = v.labels as Record<string, string | number | undefined>;
      const stage = String(labels.stage ?? '');
      const q = labels.quantile;
      if (!stage || q === undefined) continue;
      const s = (stages[stage] ??= { count: this.stageCounts[stage] ?? 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 });
      const val = Number.isFinite(v.value) ? Math.round(v.value * 1000) / 1000 : 0;
      if (q === 0.5) s.p50Ms = val; else if (q === 0.95) s.p95Ms = val; else if (q === 0.99) s.p99Ms = val;
    }
    const elapsedS = Math.max(1e-3, (monoMs - this.lastSnapshotAtMs) / 1000);
    const detectFps = Math.round(((this.counts.detected - this.detectedAtLastSnapshot) / elapsedS) * 100) / 100;
    this.detectedAtLastSnapshot = this.counts.detected;
    this.lastSnapshotAtMs = monoMs;
    const ns = (v: number) => (Number.isFinite(v) ? Math.round(v / 1e4) / 100 : 0);
    const eventLoop = { p50Ms: ns(this.loopDelay.percentile(50)), p99Ms: ns(this.loopDelay.percentile(99)), maxMs: ns(this.loopDelay.max) };
    this.loopDelay.reset();
    this.loopP99.set(eventLoop.p99Ms);
    const drift = this.drift.report();
    for (const [k, v] of Object.entries(drift.psi)) if (v !== undefined) this.driftPsi.set({ signal: k }, v);
    this.driftFlag.set(drift.flagged ? 1 : 0);
    const ob = this.opts.outboxStats?.();
    const temperatureC = readTemperaturesC(this.opts.thermalRoot);
    return {
      v: 1,
      ts: nowMs,
      intervalMs: this.opts.intervalMs ?? 10_000,
      uptimeS: Math.round((monoMs - this.startedAtMs) / 100) / 10,
      frames: { in: this.counts.in, processed: this.counts.processed, dropped: { ...this.counts.dropped } },
      detectFps,
      stages,
      eventLoop,
      cpu: this.cpu.sample(),
      memory: memorySample(),
      ...(temperatureC ? { temperatureC } : {}),
      models: { ...this.models },
      drift,
      outbox: { pending: ob?.pending ?? 0, dropped: ob?.droppedFull ?? 0 },
      ...(this.sources.cameras ? { cameras: this.cameraList(this.sources.cameras()) } : {}),
    };
  }

  /**
   * At most TELEMETRY_MAX_CAMERAS, those not `up` first (the ones an operator must see), each in the
   * payload's bounds; the agent's Prometheus endpoint has every camera.
   */
  private cameraList(all: CameraTelemetry[]): CameraTelemetry[] {
    let list = all;
    if (all.length > TELEMETRY_MAX_CAMERAS) {
      if (!this.camerasCapWarned) {
        this.camerasCapWarned = true;
        this.log.warn({ cameras: all.length, listed: TELEMETRY_MAX_CAMERAS }, `telemetry lists ${TELEMETRY_MAX_CAMERAS} of the ${all.length} cameras, those not up first; ef_camera_up on the Prometheus endpoint has all of them`);
      }
      list = [...all.filter((c) => c.status !== 'up'), ...all.filter((c) => c.status === 'up')].slice(0, TELEMETRY_MAX_CAMERAS);
    }
    return list.map((c) => (c.lastError && c.lastError.length > 200 ? { ...c, lastError: `${c.lastError.slice(0, 199)}…` } : c));
  }

  /** Starts the event-loop monitor and, with `publish`, the periodic telemetry. Safe twice. */
  start(publish?: (t: TelemetryPayload) => void): void {
    if (!this.loopStarted) { this.loopDelay.enable(); this.loopStarted = true; }
    if (!publish || this.timer) return;
    this.timer = setInterval(() => {
      this.snapshot().then(publish, (err: unknown) => this.log.warn({ err: describeError(err) }, 'telemetry snapshot failed'));
    }, this.opts.intervalMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.loopStarted) { this.loopDelay.disable(); this.loopStarted = false; }
  }
}
