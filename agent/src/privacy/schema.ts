/**
 * Privacy configuration: which detectors find faces and plates, how regions are hidden, and how the
 * gate behaves when the privacy detector has not covered an image. One TypeBox schema is the type,
 * the defaults and the JSON Schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';

export const RedactionSpec = Type.Object({
  method: Type.Union([Type.Literal('blur'), Type.Literal('pixelate')], { default: 'blur' }),
  /**
   * Gaussian sigma as a fraction of the padded region's shorter side (0.5 on a 280 px padded face →
   * σ 140 px). Measured on the six face-api group photos: at 0.2 with 0.2 padding BlazeFace still
   * finds 11 of 22 blurred faces at threshold 0.2; at 0.5 with 0.4 padding none.
   */
  blurStrength: Type.Number({ exclusiveMinimum: 0, maximum: 2, default: 0.5 }),
  /** Lower bound of the Gaussian sigma in pixels, so small regions are still hidden. */
  minBlurSigmaPx: Type.Number({ minimum: 0.3, maximum: 1000, default: 6 }),
  /** Pixelate: blocks across the region's shorter side (at 4-6 BlazeFace still finds most faces; at 3 none). */
  pixelBlocks: Type.Integer({ minimum: 1, maximum: 64, default: 3 }),
  /** Padding added on every side, as a fraction of the region's width/height (covers hairline, ears, chin). */
  paddingFrac: Type.Number({ minimum: 0, maximum: 2, default: 0.4 }),
}, { additionalProperties: false });
export type RedactionSpec = Static<typeof RedactionSpec>;

/**
 * The top band of a person box from the main detector, hidden when the face model found no face in
 * it (a head turned away, in profile, or too small for the face model). Fractions of the box height;
 * a standing person's head is about its top 1/7, a waist-up person's about its top third.
 */
export const HeadBandSpec = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /** Labels of the main detector's classes that are people. */
  labels: Type.Array(Type.String(), { default: ['person'] }),
  minPersonScore: Type.Number({ minimum: 0, maximum: 1, default: 0.3 }),
  top: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
  bottom: Type.Number({ minimum: 0, maximum: 1, default: 0.3 }),
  /** Padding of the band (the band spans the whole box width already). */
  paddingFrac: Type.Number({ minimum: 0, maximum: 2, default: 0.1 }),
}, { additionalProperties: false });
export type HeadBandSpec = Static<typeof HeadBandSpec>;

export const FacePrivacySpec = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /** A BlazeFace model with its metadata next to it. */
  modelPath: Type.String({ default: 'assets/models/blazeface-back/model.onnx' }),
  /** Lower than a detection threshold on purpose: a missed face is worse than an extra blur. */
  scoreThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0.4 }),
  /**
   * On each image that leaves (not on every frame: see stage.ts), also run the face model on a grid
   * of overlapping tiles (1×1 = whole frame only): a 256-px model input shrinks faces under about
   * 12 px in it away (a 30-px face in a 1920-px frame is 4 px).
   * `auto` (each side): the fewest tiles so that none is longer than `autoMaxScale` model inputs,
   * chosen per frame size (1920×1080: 4×2; 1280×720: 3×2; 640×480: none). See tiles.ts.
   */
  tiles: Type.Object({
    cols: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 8 })], { default: 'auto' }),
    rows: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 8 })], { default: 'auto' }),
    overlapFrac: Type.Number({ minimum: 0, maximum: 0.5, default: 0.2 }),
    /** For `auto`: the longest a tile may be, in model input sides (2.5: 640 px for BlazeFace; faces from ~32 px are found). */
    autoMaxScale: Type.Number({ minimum: 1, maximum: 20, default: 2.5 }),
  }, { additionalProperties: false, default: {} }),
  /** Persons with no face found in their head band get the band hidden (fails closed on missed faces). */
  headBand: Type.Object(HeadBandSpec.properties, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type FacePrivacySpec = Static<typeof FacePrivacySpec>;

/** Lower band of the vehicle box, in fractions of its height and width, used when no text was found. */
export const PlateBandSpec = Type.Object({
  top: Type.Number({ minimum: 0, maximum: 1, default: 0.4 }),
  bottom: Type.Number({ minimum: 0, maximum: 1, default: 1 }),
  left: Type.Number({ minimum: 0, maximum: 1, default: 0.05 }),
  right: Type.Number({ minimum: 0, maximum: 1, default: 0.95 }),
}, { additionalProperties: false });
export type PlateBandSpec = Static<typeof PlateBandSpec>;

export const PlatePrivacySpec = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /** PP-OCR (DB) text detector with its metadata; when absent on disk, only the band fallback runs. */
  textModelPath: Type.Optional(Type.String({ default: 'assets/models/ppocr-det/model.onnx' })),
  /**
   * Margin added on every side of a text region, as a fraction of its height: the text detector
   * boxes the characters, the plate (its frame and any lettering around) extends beyond them.
   */
  textMarginFrac: Type.Number({ minimum: 0, maximum: 5, default: 0.5 }),
  /** Labels of the main detector's classes that carry plates. */
  vehicleLabels: Type.Array(Type.String(), { default: ['car', 'bus', 'truck', 'motorcycle'] }),
  minVehicleScore: Type.Number({ minimum: 0, maximum: 1, default: 0.3 }),
  /** Text-model runs per frame (largest vehicles first); vehicles past the cap get the band (bounded latency, fails closed). */
  maxTextRuns: Type.Integer({ minimum: 0, maximum: 64, default: 6 }),
  /** Vehicles smaller than this (shorter side, px) are too small to carry a readable plate. */
  minVehicleSizePx: Type.Integer({ minimum: 0, default: 24 }),
  /**
   * When the band fallback applies: `no-model` only without a text model; `no-text` also when the
   * text model found no text centred in the vehicle's band (fails closed on blurred or unusual
   * plates; text elsewhere on the vehicle, a sticker or a badge, does not turn the band off); `always`.
   */
  fallback: Type.Union([Type.Literal('never'), Type.Literal('no-model'), Type.Literal('no-text'), Type.Literal('always')], { default: 'no-text' }),
  band: Type.Object(PlateBandSpec.properties, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type PlatePrivacySpec = Static<typeof PlatePrivacySpec>;

export const PrivacyGateSpec = Type.Object({
  /** An image whose nearest privacy detection is older than this (by frame pts) is not covered. */
  maxAgeMs: Type.Integer({ minimum: 0, default: 500 }),
  /** What happens to an image that is not covered: withheld (not sent) or sent fully blurred. */
  policy: Type.Union([Type.Literal('withhold'), Type.Literal('blur-all')], { default: 'withhold' }),
  /** Extra padding per second of age while tracked regions are extrapolated between detections. */
  growFracPerSecond: Type.Number({ minimum: 0, default: 0.5 }),
  jpegQuality: Type.Integer({ minimum: 1, maximum: 100, default: 85 }),
  /** Released images wider than this are scaled down after redaction. A JPEG over what an alert carries (360 KiB: 480 KiB of base64) is encoded again smaller (redactor.ts encodeJpeg). */
  maxWidthPx: Type.Integer({ minimum: 16, default: 1280 }),
}, { additionalProperties: false });
export type PrivacyGateSpec = Static<typeof PrivacyGateSpec>;

/** Optional local ring of raw frames for debugging; off by default so raw frames never touch disk. */
export const RawRingSpec = Type.Object({
  enabled: Type.Boolean({ default: false }),
  dir: Type.String({ default: '/var/lib/edge-agent/raw-ring' }),
  maxFrames: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
}, { additionalProperties: false });
export type RawRingSpec = Static<typeof RawRingSpec>;

export const PrivacyConfig = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /** Run the privacy detectors on every n-th frame processed from each camera (not by frame index: dropped frames skip indices); tracked regions cover the frames between. */
  everyNFrames: Type.Integer({ minimum: 1, default: 1 }),
  faces: Type.Object(FacePrivacySpec.properties, { additionalProperties: false, default: {} }),
  plates: Type.Object(PlatePrivacySpec.properties, { additionalProperties: false, default: {} }),
  redaction: Type.Object(RedactionSpec.properties, { additionalProperties: false, default: {} }),
  gate: Type.Object(PrivacyGateSpec.properties, { additionalProperties: false, default: {} }),
  rawRing: Type.Object(RawRingSpec.properties, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type PrivacyConfig = Static<typeof PrivacyConfig>;

export const privacyConfigValidator = compileSchema(PrivacyConfig);

/** The config with every default filled in (`{}` is a valid privacy config). */
export function parsePrivacyConfig(value: unknown = {}): PrivacyConfig {
  return privacyConfigValidator.parse(value, 'privacy config');
}
