/**
 * What connects a running agent to its fleet: the MQTT link (alerts through the persistent outbox,
 * telemetry, state), the telemetry registry (also served to Prometheus on localhost) and the privacy
 * stage, which every alert snapshot passes through before it can reach the link. The pipeline only
 * sees `sinks()`.
 */
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import type { CameraStats, FrameResult, PipelineSinks } from './camera-pipeline.js';
import type { CameraDown } from './agent-runner.js';
import type { AlertEvent } from '../rules/events.js';
import type { Frame } from '../types.js';
import { Counter } from 'prom-client';
import { AgentLink, type AgentLinkOptions } from '../link/agent-link.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { MetricsServer } from '../telemetry/metrics-server.js';
import { PrivacyStage } from '../privacy/stage.js';
import { FrameBoxes } from '../privacy/frame-boxes.js';
import { toAlertPayload } from '../rules/payload.js';
import { ConfigError } from '../util/errors.js';
import { moduleLogger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { VERSION } from '../version.js';
import { createOtaManager } from '../ota/create.js';
import type { OtaManager } from '../ota/ota-manager.js';
import type { SwappableDetector } from '../ota/swappable-detector.js';
import { performance } from 'node:perf_hooks';

/** How long after the last broken detector run the device's health stops saying so (checkBrokenRuns). */
export const BROKEN_RUNS_CLEAR_MS = 10 * 60_000;

export interface FleetAttachmentOptions {
  config: AgentConfig;
  /** Device secret; read from the config's secretFile or systemd's credential when absent. */
  secret?: string;
}

/** The device secret: systemd LoadCredential= (device-secret), then link.secretFile, then EF_DEVICE_SECRET; an empty one counts as none. */
export function readDeviceSecret(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): string {
  const link = config.link;
  const candidates = [
    env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, 'device-secret') : undefined,
    link?.secretFile,
  ].filter((p): p is string => Boolean(p));
  for (const p of candidates) {
    let secret: string;
    try {
      secret = readFileSync(p, 'utf8').trim();
    } catch {
      continue; // try the next place; the error below lists them all
    }
    // Empty: the unit's SetCredential=device-secret: fallback on a box that has no secret file.
    if (secret) return secret;
  }
  if (env.EF_DEVICE_SECRET) return env.EF_DEVICE_SECRET;
  throw new ConfigError(`No device secret for ${config.deviceId}: looked in ${candidates.join(', ') || '(no secretFile configured)'} and EF_DEVICE_SECRET. ` +
    'Create one with `fleetctl device add ID` and install it with scripts/install-agent.sh --device-secret FILE, or set link.secretFile',
  [{ path: '/link/secretFile', expected: 'a readable file with the device secret', received: link?.secretFile ?? 'nothing' }]);
}

/**
 * What the agent says of itself in its retained `state`: version, platform (OS, CPU, board preset,
 * Node) and the running model version, read when each state is sent (OTA changes it). The dashboard's
 * Platform field and board filter read it; it used to carry only the version and the model's
 * directory name.
 */
export function agentIdentity(config: AgentConfig, runningVersion: () => string | undefined): NonNullable<AgentLinkOptions['identity']> {
  const dirName = config.detector.model.split('/').slice(-2, -1)[0] ?? 'detector';
  return {
    agentVersion: VERSION,
    platform: { os: process.platform, arch: process.arch, node: process.version, ...(config.board ? { board: config.board } : {}) },
    get models() { return { detector: runningVersion() ?? dirName }; },
  };
}

export class FleetAttachment {
  readonly telemetry: Telemetry;
  readonly privacy: PrivacyStage;
  link: AgentLink | undefined;
  /** Over-the-air model updates (config `ota`); its detector is the one the pipeline must use. */
  ota: OtaManager | undefined;
  detector: SwappableDetector | undefined;
  private metricsServer: MetricsServer | undefined;
  private readonly log = moduleLogger('fleet');
  private snapshotsWithheld = 0;
  private alertsNotQueued = 0;
  /** Per camera: the boxes the privacy stage is given (tracks, and the last raw detections, a tracked person once: frame-boxes.ts). */
  private readonly privacyBoxes: FrameBoxes;
  /** Cameras down for the rest of the run, with why: the device's health says so (cameraDown). */
  private readonly downCameras = new Map<string, string>();
  /** Per camera: broken detector runs seen at the last check, and when the count last grew (monotonic ms; see checkBrokenRuns). */
  private readonly brokenCams = new Map<string, { runs: number; grewAtMs: number }>();

  constructor(private readonly opts: FleetAttachmentOptions) {
    const { config } = opts;
    this.telemetry = new Telemetry({
      intervalMs: config.telemetry.intervalMs,
      defaultLabels: { device: config.deviceId },
      outboxStats: () => {
        const s = this.link?.status().outbox;
        return { pending: s?.pending ?? 0, droppedFull: s?.droppedFull ?? 0 };
      },
    });
    // Snapshots are taken from the gate's outcome; nothing else may publish images.
    this.privacy = new PrivacyStage({ config: config.privacy, sink: () => undefined, registry: this.telemetry.registry, intraOpThreads: 1, runTimeoutMs: config.detector.runTimeoutMs });
    this.privacyBoxes = new FrameBoxes({ band: config.privacy.faces.headBand });
    this.registerLinkMetrics();
  }

  /**
   * What the agent lost or refused, on its Prometheus endpoint: these were kept in memory only, where
   * no operator could see them (an oversized desired state, alerts the outbox refused, telemetry not
   * sent, withheld snapshots, resends).
   */
  private registerLinkMetrics(): void {
    const registers = [this.telemetry.registry];
    const link = () => this.link?.status();
    const counter = <L extends string>(name: string, help: string, labelNames: L[], values: () => [Partial<Record<L, string>>, number][]) =>
      new Counter({ name, help, labelNames, registers, collect() { this.reset(); for (const [labels, n] of values()) if (n > 0) this.inc(labels, n); } });
    counter('ef_link_inbound_dropped_total', 'Server messages the agent dropped, by kind:reason (e.g. desired:oversized)', ['reason'],
      () => Object.entries(link()?.inboundDropped ?? {}).map(([reason, n]) => [{ reason }, n]));
    counter('ef_alerts_not_queued_total', 'Alerts the outbox refused (logged as "alert not queued")', [], () => [[{}, this.alertsNotQueued]]);
    counter('ef_snapshots_withheld_total', 'Alert snapshots the privacy gate withheld', [], () => [[{}, this.snapshotsWithheld]]);
    counter('ef_telemetry_not_sent_total', 'Telemetry messages not sent: offline, or not matching the protocol', ['reason'],
      () => [[{ reason: 'offline' }, link()?.telemetryDroppedOffline ?? 0], [{ reason: 'refused' }, link()?.telemetryRefused ?? 0]]);
    counter('ef_alert_resend_rounds_total', 'Times the receipt timeout resent alerts', [], () => [[{}, link()?.resends ?? 0]]);
  }

  async start(): Promise<void> {
    const { config } = this.opts;
    // Images leave the box only through the link; without one the privacy models are not loaded,
    // and any submit() is withheld (fails closed).
    if (config.link && config.privacy.enabled) await this.privacy.start();
    if (config.telemetry.prometheusPort !== undefined) {
      this.metricsServer = new MetricsServer({ registry: this.telemetry.registry, port: config.telemetry.prometheusPort, host: '127.0.0.1' });
      await this.metricsServer.start();
      this.log.info({ port: this.metricsServer.port }, 'Prometheus metrics on 127.0.0.1');
    }
    if (config.link) {
      mkdirSync(config.stateDir, { recursive: true });
      const caPem = config.link.caFile ? readFileSync(config.link.caFile) : undefined;
      this.link = new AgentLink({
        deviceId: config.deviceId,
        secret: this.opts.secret ?? readDeviceSecret(config),
        url: config.link.url,
        caPem,
        protocolVersion: config.link.protocolVersion,
        outbox: join(config.stateDir, 'outbox.sqlite'),
        identity: agentIdentity(config, () => this.ota?.runningVersion),
      });
      if (config.ota) {
        // Before the link starts: the retained desired state arrives right after connecting.
        this.ota = await createOtaManager({ ota: config.ota, detector: config.detector, stateDir: config.stateDir, link: this.link });
        this.detector = await this.ota.start();
        // Confidence and class mix measure the model: each model that becomes the running one (an OTA
        // trial, a rollback) gets its own baseline; compared with the old model's it stayed flagged.
        this.detector.onSwap(() => this.telemetry.drift.resetDetectionBaseline());
        // A block of ota.publicKeyFile that was skipped (a damaged paste, a private key) showed only in
        // the journal; the device's health says it until the file is fixed and the agent restarted.
        this.link.setHealthReasons('ota.publicKeyFile', this.ota.store.skippedKeys().map((why) => `key file: ${why}`));
      }
      this.link.start();
      this.telemetry.start((t) => {
        this.checkBrokenRuns();
        this.link?.publishTelemetry(t);
      });
    } else {
      this.telemetry.start();
    }
  }

  sinks(inner?: PipelineSinks): PipelineSinks {
    return {
      onFrame: async (r: FrameResult) => {
        this.telemetry.recordFrame({ kind: 'processed', detected: r.detections !== undefined });
        if (r.detections) this.telemetry.recordDetections(r.detections);
        this.telemetry.observeFrameStats(r.frame);
        // The privacy detector sees every tracked box (vehicles carry plate regions between detections)
        // and the camera's latest raw detections: the tracker confirms a vehicle only on its second
        // detection and above its own score threshold, and detector.labels may drop "car" from the
        // tracks; what is redacted must not depend on either. A detection a reported track was
        // matched to is that track, given once (frame-boxes.ts).
        await this.privacy.observe(r.frame, this.privacyBoxes.boxesFor(r.cameraId, r.detections, r.tracks));
        await inner?.onFrame?.(r);
      },
      onAlert: async (alert: AlertEvent, frame: Frame) => {
        await this.publishAlert(alert, frame);
        await inner?.onAlert?.(alert, frame);
      },
    };
  }

  /**
   * Feeds telemetry from the runner: each stage latency as it is recorded (pass `onStage` to the
   * runner), and at each snapshot the capture's frame totals, each camera's state and the running
   * model version. Without it the fleet saw frames in 0, no drops, no stage latencies and no model
   * versions.
   */
  telemetryFor(runner: () => { cameraStats(): CameraStats[] } | undefined): { onStage: (stage: string, ms: number) => void } {
    const modelName = this.opts.config.detector.model.split('/').slice(-2, -1)[0] ?? 'detector';
    this.telemetry.sources = {
      captureTotals: () => {
        const cams = runner()?.cameraStats() ?? [];
        return { in: cams.reduce((n, c) => n + c.framesIn, 0), dropped: cams.reduce((n, c) => n + c.dropped.capture, 0) };
      },
      models: () => ({ detector: this.ota?.runningVersion ?? modelName }),
      cameras: () => (runner()?.cameraStats() ?? []).map((c) => ({
        id: c.cameraId, status: c.status, framesIn: c.framesIn, restarts: c.restarts,
        ...(c.width !== undefined && c.height !== undefined ? { width: c.width, height: c.height } : {}),
        ...(c.lastError ? { lastError: c.lastError } : {}),
      })),
      brokenRuns: () => (runner()?.cameraStats() ?? []).map((c) => ({ camera: c.cameraId, runs: c.brokenRuns ?? 0 })),
    };
    return { onStage: (stage, ms) => this.telemetry.recordStage(stage, ms) };
  }

  /**
   * A camera gave up and is down for the rest of the run (pass it to the runner's `onCameraDown`):
   * the device's retained state goes `degraded` with `camera <id> down: <why>`, where it said ok while
   * only telemetry and the journal told.
   */
  readonly cameraDown = (down: CameraDown): void => {
    this.downCameras.set(down.cameraId, `camera ${down.cameraId} down: ${down.message}`);
    this.link?.setHealthReasons('cameras', [...this.downCameras.values()]);
  };

  /**
   * The detector's broken runs (NaN outputs, E_MODEL_OUTPUT: the camera pipeline counts them and tracks
   * the frame without detections) turn the device's health degraded, naming each camera that had one
   * within BROKEN_RUNS_CLEAR_MS. Counted on the Prometheus endpoint and logged only, they went unseen
   * in `fleetctl device list` and the dashboard, while the cameras were blind. Checked at each
   * telemetry snapshot (every telemetry.intervalMs).
   */
  checkBrokenRuns(nowMs = performance.now()): void {
    for (const c of this.telemetry.sources.brokenRuns?.() ?? []) {
      if (c.runs > (this.brokenCams.get(c.camera)?.runs ?? 0)) this.brokenCams.set(c.camera, { runs: c.runs, grewAtMs: nowMs });
    }
    const recent = [...this.brokenCams].filter(([, b]) => nowMs - b.grewAtMs < BROKEN_RUNS_CLEAR_MS).map(([id]) => id);
    // Within the protocol's 200 characters whatever the camera ids: three named, the rest counted.
    const named = recent.slice(0, 3).join(', ') + (recent.length > 3 ? ` and ${recent.length - 3} more` : '');
    this.link?.setHealthReasons('detector-output', recent.length
      ? [`detector output broken (NaN, E_MODEL_OUTPUT) on camera ${named}; see the agent's journal, check the model or roll it back`]
      : []);
  }

  /** Publishes an alert through the outbox, with a redacted snapshot when the privacy gate releases one. */
  async publishAlert(alert: AlertEvent, frame: Frame): Promise<void> {
    const outcome = await this.privacy.submit(frame, 'alert-snapshot');
    const payload = toAlertPayload(alert);
    if (outcome.released) {
      const img = outcome.image;
      payload.snapshot = { contentType: 'image/jpeg', redacted: true, width: img.width, height: img.height, dataBase64: img.jpeg.toString('base64') };
    } else {
      this.snapshotsWithheld++;
    }
    if (!this.link) return;
    // An alert the outbox cannot take (a disk full, an alert the protocol refuses) is logged and
    // counted; thrown into the pipeline it stopped every camera and the agent with it.
    try {
      this.link.publishAlert(payload);
    } catch (err) {
      this.alertsNotQueued++;
      this.log.error({ alert: payload.id, camera: payload.camera, rule: payload.rule, err: describeError(err) }, 'alert not queued');
    }
  }

  get withheldSnapshots(): number {
    return this.snapshotsWithheld;
  }

  /** Alerts the outbox refused (logged as "alert not queued"). */
  get failedAlerts(): number {
    return this.alertsNotQueued;
  }

  async stop(): Promise<void> {
    this.telemetry.stop();
    await this.ota?.stop();
    this.ota = undefined;
    this.detector = undefined;
    // Flushes what the outbox can send; the rest stays on disk for the next start.
    await this.link?.stop();
    this.link = undefined;
    await this.metricsServer?.stop();
    this.metricsServer = undefined;
    await this.privacy.stop();
  }
}
