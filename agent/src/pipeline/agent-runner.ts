/**
 * Runs the configured cameras with one shared detector and collects the run summary. The service
 * layer (systemd notify, MQTT link, privacy gate) attaches through `sinks` and `onProgress`.
 */
import { performance } from 'node:perf_hooks';
import type { AgentConfig, CameraConfig } from '../config/schema.js';
import { Detector } from '../infer/detector.js';
import { CameraPipeline, type CameraPipelineOptions, type CameraStats, type PipelineSinks, type FrameResult } from './camera-pipeline.js';
import { StageLatencies, type LatencySummary } from './latency.js';
import { NdjsonWriter, toFrameLine } from './ndjson.js';
import { loadBoard } from '../config/boards.js';
import { moduleLogger, setConfiguredLogLevel, type Logger } from '../util/log.js';
import { CaptureError, ConfigError, describeError } from '../util/errors.js';
import { maskUrlCredentials } from '../util/mask-url.js';
import { RulesEngine } from '../rules/engine.js';
import { unknownLabelIssues } from '../config/labels.js';

export interface RunSummary {
  type: 'summary';
  ok: boolean;
  error?: { code: string; message: string };
  durationMs: number;
  provider: string;
  model: string;
  framesIn: number;
  processed: number;
  detected: number;
  dropped: { capture: number };
  alerts: number;
  fps: number;
  cameras: CameraStats[];
  latencyMs: Record<string, LatencySummary>;
}

export interface AgentRunnerOptions {
  config: AgentConfig;
  sinks?: PipelineSinks;
  /** Replaces the detector (tests, an adapter chosen by the service, or the OTA SwappableDetector). */
  detector?: DetectorHandle;
  /** Every stage latency sample as it is recorded (telemetry). */
  onStage?: (stage: string, ms: number) => void;
  /** Where the runner logs (default: the process logger, module "runner"). */
  log?: Logger;
  /** Each camera's frame source (tests); GStreamer, as the camera's config says, when absent. */
  sourceFor?: (camera: CameraConfig) => CameraPipelineOptions['source'];
  /**
   * A camera gave up and is down for the rest of the run while others go on (the fleet's health);
   * `message` has the URL's credentials masked. Not called when the run fails with it.
   */
  onCameraDown?: (down: CameraDown) => void;
}

/** A camera down for the rest of the run: its id and why (error code, masked message). */
export interface CameraDown { cameraId: string; code: string; message: string }

/** What the runner needs of a detector; Detector and agent/src/ota SwappableDetector both fit. */
export type DetectorHandle = Pick<Detector, 'detectTimed' | 'close' | 'provider' | 'session' | 'meta'>;

export class AgentRunner {
  readonly latencies: StageLatencies;
  private readonly log: Logger;
  private detector: DetectorHandle | undefined;
  private pipelines: CameraPipeline[] = [];
  private writer: NdjsonWriter | undefined;

  constructor(private opts: AgentRunnerOptions) {
    this.latencies = new StageLatencies(10_000, opts.onStage);
    this.log = opts.log ?? moduleLogger('runner');
  }

  /** Per camera: frames in, processed, dropped, restarts. */
  cameraStats(): CameraStats[] {
    return this.pipelines.map((p) => p.stats());
  }

  /** Loads the model (warm-up included) and builds the camera pipelines. */
  async start(): Promise<void> {
    const { config } = this.opts;
    const board = await loadBoard(config.board);
    this.detector = this.opts.detector ?? await Detector.open({
      modelPath: config.detector.model,
      providers: config.detector.providers,
      intraOpThreads: config.detector.threads,
      scoreThreshold: config.detector.scoreThreshold,
      runTimeoutMs: config.detector.runTimeoutMs,
    });
    this.log.info({ model: config.detector.model, provider: this.detector.provider, fallbacks: this.detector.session.info.fallbacks }, 'detector loaded');
    this.warnUnknownLabels();
    const swappable = this.detector as Partial<{ onSwap(fn: () => void): void }>;
    swappable.onSwap?.(() => this.warnUnknownLabels());
    if (config.output.ndjson) this.writer = new NdjsonWriter(config.output.ndjson);
    const writer = this.writer;
    const outer = this.opts.sinks;
    const sinks: PipelineSinks = {
      onFrame: async (r: FrameResult) => {
        if (writer) await writer.write(toFrameLine(r, config.output.includeTracks));
        await outer?.onFrame?.(r);
      },
      onAlert: outer?.onAlert?.bind(outer),
    };
    this.pipelines = config.cameras.map((camera) => new CameraPipeline({
      camera, detector: this.detector as DetectorHandle, schedule: config.schedule, tracker: config.tracker,
      labels: config.detector.labels, board: board.capture, sinks, latencies: this.latencies,
      ...(this.opts.sourceFor ? { source: this.opts.sourceFor(camera) } : {}),
      ...(this.opts.log ? { log: this.opts.log } : {}),
    }));
  }

  /**
   * Applies the fields that reload live (the schema marks the others `x-restart`): camera rules,
   * the detector's score threshold and the log level. A change in the number of cameras is refused.
   */
  reconfigure(next: AgentConfig): void {
    if (next.cameras.length !== this.pipelines.length) {
      throw new ConfigError(`Adding or removing cameras needs a restart (running ${this.pipelines.length}, config has ${next.cameras.length})`,
        [{ path: '/cameras', expected: `${this.pipelines.length} cameras until restart`, received: String(next.cameras.length) }]);
    }
    // Validate every camera's rules before touching any, so a bad rule changes nothing.
    const engines = next.cameras.map((c) => new RulesEngine({ config: c.rules }));
    this.pipelines.forEach((p, i) => p.setRules(engines[i]));
    if (this.detector && next.detector.scoreThreshold !== undefined && 'scoreThreshold' in this.detector.meta.decoder) {
      this.detector.meta.decoder.scoreThreshold = next.detector.scoreThreshold;
    }
    setConfiguredLogLevel(next.log.level);
    this.opts = { ...this.opts, config: next };
  }

  /**
   * Warns for each name in detector.labels or a rule's classes that the running model does not have.
   * Without OTA, check-config refuses such a name against the configured model; with OTA it only
   * warns (a class may come with a later model), and a model that arrives over the air may have other
   * labels than the one configured: its rules then never fire while it runs.
   */
  private warnUnknownLabels(): void {
    const meta = this.detector?.meta;
    if (!meta?.labels) return;
    const source = `the model ${meta.name} ${meta.version}`;
    for (const issue of unknownLabelIssues(this.opts.config, { labels: new Set(meta.labels), source, listedIn: 'its .meta.json' })) {
      this.log.warn({ path: issue.path, name: issue.received, model: `${meta.name}@${meta.version}` }, `${issue.path} is ${issue.received}, not ${issue.expected}: nothing of that class is tracked or alerted while this model runs`);
    }
  }

  /**
   * Runs every camera to its end. A camera whose source gives up (reconnect.maxRetries spent) is down
   * for the rest of the run: logged, marked `failed` in its stats and telemetry, while the others go
   * on; at a site with 8 cameras one dead camera stopped all 8 and the agent with them. The run
   * rejects when every camera has failed, or at once (stopping the others) on any other error: a hung
   * inference run or a sink that throws is no one camera's fault.
   */
  async run(signal?: AbortSignal): Promise<RunSummary> {
    if (!this.detector) await this.start();
    // A stop requested while the model was loading ends the run before the first frame.
    if (signal?.aborted) return this.summary(0);
    const t0 = performance.now();
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let error: unknown;
    const down: CameraPipeline[] = [];
    try {
      await Promise.all(this.pipelines.map((p) => p.run(inner.signal).catch((err: unknown) => {
        if (p.failure && error === undefined) {
          down.push(p);
          this.cameraDown(p, this.pipelines.length - down.length);
          return;
        }
        error ??= err;
        inner.abort();
      })));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (error === undefined && down.length > 0 && down.length === this.pipelines.length) error = everyCameraFailed(down);
    let summary = this.summary(performance.now() - t0, error);
    try {
      await this.writer?.write(summary);
    } catch (err) {
      // The frame log failed (its reader gone, its disk full): the run did not deliver what it was asked for.
      if (error === undefined) summary = this.summary(performance.now() - t0, (error = err));
    }
    if (error) throw Object.assign(error as Error, { summary });
    return summary;
  }

  private cameraDown(p: CameraPipeline, running: number): void {
    const e = describeError(p.failure);
    const message = maskUrlCredentials(e.message);
    if (running === 0) {
      this.log.error({ camera: p.cameraId, code: e.code, error: message }, `camera ${p.cameraId} is down: ${message}; no camera is left running`);
    } else {
      this.log.error({ camera: p.cameraId, code: e.code, error: message, running },
        `camera ${p.cameraId} is down for the rest of this run: ${message}; the other ${running} camera${running > 1 ? 's' : ''} go on`);
      this.opts.onCameraDown?.({ cameraId: p.cameraId, code: e.code, message });
    }
  }

  summary(durationMs: number, error?: unknown): RunSummary {
    const cameras = this.pipelines.map((p) => p.stats());
    const sum = (f: (c: CameraStats) => number) => cameras.reduce((a, c) => a + f(c), 0);
    const processed = sum((c) => c.processed);
    return {
      type: 'summary', ok: !error,
      ...(error ? { error: { code: (error as { code?: string }).code ?? 'E_INTERNAL', message: (error as Error).message } } : {}),
      durationMs: Math.round(durationMs),
      provider: this.detector?.provider ?? 'none',
      model: this.opts.config.detector.model,
      framesIn: sum((c) => c.framesIn), processed, detected: sum((c) => c.detected),
      dropped: { capture: sum((c) => c.dropped.capture) }, alerts: sum((c) => c.alerts),
      fps: durationMs > 0 ? Math.round((processed / durationMs) * 1e4) / 10 : 0,
      cameras, latencyMs: this.latencies.summary(),
    };
  }

  async stop(): Promise<void> {
    try {
      await this.writer?.stop();
    } finally {
      this.writer = undefined;
      if (!this.opts.detector) await this.detector?.close();
      this.detector = undefined;
    }
  }
}

/** The error a run ends with when no camera is left: the camera's own for one, all of them for several. */
function everyCameraFailed(down: readonly CameraPipeline[]): unknown {
  if (down.length === 1) return down[0].failure;
  const reasons = down.map((p) => maskUrlCredentials(p.failure?.message ?? 'failed')).join('; ');
  return new CaptureError(`Every camera failed (${down.length}): ${reasons}`, { cause: down[0].failure });
}
