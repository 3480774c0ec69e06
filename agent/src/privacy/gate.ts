/**
 * The one gate every image passes before it may leave the device (alert snapshots, the only images
 * that leave today; a new path adds its purpose to ImagePurpose and comes through here). It looks up the privacy regions that cover the image's pts, hides them, encodes
 * a JPEG and hands it to the sink. If no privacy detection covers the image (stale, failed, never
 * ran) it withholds the image, or with policy `blur-all` releases it fully blurred; both counted.
 * The sink's argument type can only be made here (a private brand), so code that publishes images
 * cannot be handed an unredacted one by mistake.
 */
import type { RgbImage } from '../types.js';
import { describeError } from '../util/errors.js';
import { moduleLogger, type Logger } from '../util/log.js';
import type { PrivacyGateSpec, RedactionSpec } from './schema.js';
import type { PrivacyCoverage, PrivacyRegion } from './coverage.js';
import type { PrivacyMetrics, WithholdReason } from './metrics.js';
import { blurWholeImage, encodeJpeg, redactImage } from './redactor.js';
import { SNAPSHOT_MAX_JPEG_BYTES } from '../protocol/payloads.js';

/** Why an image leaves, as the redacted-images metric counts it (`purpose`): only what something sends. */
export type ImagePurpose = 'alert-snapshot';

declare const redactedBrand: unique symbol;

/** A JPEG that went through the gate. Only the gate constructs these. */
export interface RedactedImage {
  readonly [redactedBrand]: true;
  readonly jpeg: Buffer;
  /** Size of the JPEG (the frame scaled down to gate.maxWidthPx when wider); regions stay in frame pixels. */
  readonly width: number;
  readonly height: number;
  readonly ptsNs: number;
  readonly purpose: ImagePurpose;
  readonly regions: readonly PrivacyRegion[];
  /** True when the whole image was blurred because it was not covered (policy blur-all). */
  readonly fullyBlurred: boolean;
}

/** Where released images go (e.g. the alert publisher). Called only with redacted images. */
export type RedactedImageSink = (image: RedactedImage) => void | Promise<void>;

export type GateOutcome =
  | { released: true; image: RedactedImage }
  | { released: false; reason: WithholdReason; detail: string };

export interface PrivacyGateOptions {
  gate: PrivacyGateSpec;
  redaction: RedactionSpec;
  coverage: PrivacyCoverage;
  metrics: PrivacyMetrics;
  sink?: RedactedImageSink;
  logger?: Logger;
}

export class PrivacyGate {
  private readonly log: Logger;
  private readonly loggedReasons = new Set<string>();

  constructor(private readonly opts: PrivacyGateOptions) {
    this.log = opts.logger ?? moduleLogger('privacy-gate');
  }

  /** Redacts the image and passes it to the sink, or withholds it. Never throws for coverage problems. */
  async submit(frame: RgbImage & { ptsNs: number; sourceId?: string }, purpose: ImagePurpose): Promise<GateOutcome> {
    const { gate, redaction, coverage, metrics } = this.opts;
    const cover = coverage.at(frame.ptsNs, frame.sourceId);
    let image: RedactedImage;
    try {
      if (cover.ok) {
        const red = await redactImage(frame, cover.regions, redaction);
        image = this.make(await encodeJpeg(red.image, gate.jpegQuality, gate.maxWidthPx, SNAPSHOT_MAX_JPEG_BYTES), frame, purpose, cover.regions, false);
        metrics.imageRedacted(purpose, cover.regions.length);
      } else if (gate.policy === 'blur-all') {
        const blurred = await blurWholeImage(frame, redaction);
        image = this.make(await encodeJpeg(blurred, gate.jpegQuality, gate.maxWidthPx, SNAPSHOT_MAX_JPEG_BYTES), frame, purpose, [], true);
        metrics.imageFullyBlurred();
        this.logOnce(`blur-all:${cover.reason}`, `Releasing images fully blurred: ${cover.detail}`);
      } else {
        metrics.imageWithheld(cover.reason);
        this.logOnce(`withhold:${cover.reason}`, `Withholding images: ${cover.detail}`);
        return { released: false, reason: cover.reason, detail: cover.detail };
      }
    } catch (err) {
      // Fail closed: an image we could not redact is withheld.
      metrics.imageWithheld('redaction-error');
      const d = describeError(err);
      this.logOnce(`error:${d.code}`, `Withholding an image that could not be redacted: ${d.message}`);
      return { released: false, reason: 'redaction-error', detail: d.message };
    }
    await this.opts.sink?.(image);
    return { released: true, image };
  }

  private make(enc: { jpeg: Buffer; width: number; height: number }, frame: { ptsNs: number }, purpose: ImagePurpose, regions: readonly PrivacyRegion[], fullyBlurred: boolean): RedactedImage {
    return { jpeg: enc.jpeg, width: enc.width, height: enc.height, ptsNs: frame.ptsNs, purpose, regions, fullyBlurred } as unknown as RedactedImage;
  }

  /** Log each kind of withholding once (per-image facts go to metrics). */
  private logOnce(key: string, message: string): void {
    if (this.loggedReasons.has(key)) return;
    this.loggedReasons.add(key);
    this.log.warn(message);
  }
}
