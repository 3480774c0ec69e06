/**
 * The privacy stage as the pipeline uses it: runs the privacy detector every `everyNFrames` frames
 * (recording coverage, success or failure), and routes every outgoing image through the gate. One
 * object, so that the pipeline cannot reach the publisher except through `submit()`.
 */
import type { Registry } from 'prom-client';
import type { Detection, Frame } from '../types.js';
import { describeError } from '../util/errors.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { PrivacyCoverage } from './coverage.js';
import { PrivacyDetector } from './detector.js';
import { PrivacyGate, type GateOutcome, type ImagePurpose, type RedactedImageSink } from './gate.js';
import { PrivacyMetrics } from './metrics.js';
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
}

export class PrivacyStage {
  readonly coverage: PrivacyCoverage;
  readonly metrics: PrivacyMetrics;
  readonly rawRing: RawFrameRing;
  private detector: PrivacyDetector | undefined;
  private gate: PrivacyGate | undefined;
  private readonly log: Logger;
  private lastErrorCode: string | undefined;

  constructor(private readonly opts: PrivacyStageOptions) {
    const { gate } = opts.config;
    this.coverage = new PrivacyCoverage({ maxAgeMs: gate.maxAgeMs, growFracPerSecond: gate.growFracPerSecond });
    this.metrics = new PrivacyMetrics(opts.registry);
    this.rawRing = new RawFrameRing(opts.config.rawRing);
    this.log = opts.logger ?? moduleLogger('privacy');
  }

  /** Opens the privacy models. Safe twice. */
  async start(): Promise<void> {
    if (this.gate) return;
    const { config } = this.opts;
    const deps = { coverage: this.coverage, metrics: this.metrics };
    this.detector = this.opts.createDetector ? this.opts.createDetector(deps) : await PrivacyDetector.open(config, { ...deps, intraOpThreads: this.opts.intraOpThreads });
    this.gate = new PrivacyGate({ gate: config.gate, redaction: config.redaction, coverage: this.coverage, metrics: this.metrics, sink: this.opts.sink, logger: this.log });
  }

  /** Closes the models. Safe twice. */
  async stop(): Promise<void> {
    const d = this.detector;
    this.detector = undefined;
    this.gate = undefined;
    await d?.close();
  }

  /**
   * Runs the privacy detector on this frame when it is due. A failure is recorded in the coverage
   * (the gate then withholds) and logged once per error code; it is not thrown.
   */
  async observe(frame: Frame, detections: readonly Detection[]): Promise<boolean> {
    if (!this.detector || !this.opts.config.enabled) return false;
    if (frame.index % this.opts.config.everyNFrames !== 0) return false;
    try {
      await this.detector.run(frame, detections);
      this.lastErrorCode = undefined;
      return true;
    } catch (err) {
      const d = describeError(err);
      if (d.code !== this.lastErrorCode) this.log.error({ err: d }, 'privacy detector failed; images are withheld until it recovers');
      this.lastErrorCode = d.code;
      return false;
    }
  }

  /** The only way an image leaves: redacted, or withheld/fully blurred when not covered. */
  async submit(frame: Frame, purpose: ImagePurpose): Promise<GateOutcome> {
    if (!this.gate) return { released: false, reason: 'never', detail: 'the privacy stage is not started' };
    return this.gate.submit(frame, purpose);
  }
}
