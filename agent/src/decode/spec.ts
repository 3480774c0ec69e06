/**
 * Decoder descriptions, one per `type`, as they appear in a model's metadata file. The decoder for
 * a model is chosen from its metadata, never guessed from the file name.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Discriminated } from '../util/schema.js';

const common = {
  scoreThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0.35, description: 'minimum score kept' }),
  iouThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0.45, description: 'NMS IoU above which the lower-scored box is dropped' }),
  maxDetections: Type.Integer({ minimum: 1, default: 100 }),
};

/** Ultralytics YOLO exports: v8/v11 output `[1, 4+C, N]` (cx,cy,w,h then class scores), v5 `[1, N, 5+C]` (with objectness). */
export const YoloDecoderSpec = Type.Object({
  type: Type.Literal('yolo'),
  version: Type.Union([Type.Literal('v5'), Type.Literal('v8'), Type.Literal('v11')]),
  output: Type.Optional(Type.String({ description: 'output tensor name; the first output when absent' })),
  classAgnosticNms: Type.Boolean({ default: false }),
  ...common,
}, { additionalProperties: false });

/** CenterNet-style `[1, N, 6]`: x1, y1, x2, y2 (model-input pixels), score, class id. */
export const CenterNetDecoderSpec = Type.Object({
  type: Type.Literal('centernet'),
  output: Type.Optional(Type.String()),
  ...common,
}, { additionalProperties: false });

/**
 * CenterNet's raw heads, for exports that leave the decoding tail out (TFLite and Core ML have no
 * TopK/Gather mapping here): a class heatmap `[1, H, W, C]` of sigmoid scores and box sides
 * `[1, H, W, 4]` (left, top, right, bottom in model-input pixels from the cell's point
 * (stride·col, stride·row)); `layout: "nchw"` for `[1, C, H, W]` / `[1, 4, H, W]`. Peaks are cells
 * equal to the max of their 3×3 neighbourhood, as in the model's own tail (MaxPool 3×3 SAME, Equal).
 */
export const CenterNetHeadsDecoderSpec = Type.Object({
  type: Type.Literal('centernet-heads'),
  heatmap: Type.String({ description: 'output name of the class heatmap' }),
  boxes: Type.String({ description: 'output name of the box sides' }),
  layout: Type.Union([Type.Literal('nhwc'), Type.Literal('nchw')], { default: 'nhwc' }),
  stride: Type.Number({ exclusiveMinimum: 0, description: 'model-input pixels per heatmap cell' }),
  topK: Type.Integer({ minimum: 1, default: 100, description: 'peaks kept, as the top-k of the model\'s own tail' }),
  ...common,
}, { additionalProperties: false });

/** MediaPipe BlazeFace: SSD anchors, regressors `[1, N, 16]` and logits `[1, N, 1]`, possibly split over several outputs. */
export const BlazeFaceDecoderSpec = Type.Object({
  type: Type.Literal('blazeface'),
  /** Anchor grid, as in MediaPipe's SsdAnchorsCalculator options. */
  anchors: Type.Object({
    strides: Type.Array(Type.Integer({ minimum: 1 })),
    anchorsPerCell: Type.Array(Type.Integer({ minimum: 1 })),
  }, { additionalProperties: false }),
  /** Output names in anchor order: pairs of scores and boxes per stride group. */
  scoreOutputs: Type.Array(Type.String()),
  boxOutputs: Type.Array(Type.String()),
  /** Divisor for regressor values (the model's input size in MediaPipe's configs). */
  boxScale: Type.Number({ exclusiveMinimum: 0 }),
  ...common,
}, { additionalProperties: false });

/** DB (differentiable binarisation) text maps, as PP-OCR's detector outputs `[1, 1, H, W]` probabilities. */
export const DbDecoderSpec = Type.Object({
  type: Type.Literal('db'),
  output: Type.Optional(Type.String()),
  binaryThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0.3 }),
  boxThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
  unclipRatio: Type.Number({ minimum: 0, default: 1.6 }),
  minSizePx: Type.Number({ minimum: 0, default: 3 }),
  maxDetections: Type.Integer({ minimum: 1, default: 100 }),
}, { additionalProperties: false });

/** Told apart by `type`: ajv applies each branch's defaults (a plain anyOf union applies none) and names one branch in errors. */
export const DecoderSpec = Discriminated('type', [YoloDecoderSpec, CenterNetDecoderSpec, CenterNetHeadsDecoderSpec, BlazeFaceDecoderSpec, DbDecoderSpec]);
export type DecoderSpec = Static<typeof DecoderSpec>;
export type YoloDecoderSpec = Static<typeof YoloDecoderSpec>;
export type CenterNetDecoderSpec = Static<typeof CenterNetDecoderSpec>;
export type CenterNetHeadsDecoderSpec = Static<typeof CenterNetHeadsDecoderSpec>;
export type BlazeFaceDecoderSpec = Static<typeof BlazeFaceDecoderSpec>;
export type DbDecoderSpec = Static<typeof DbDecoderSpec>;

/** The outputs a decoder reads by name (empty when it takes the model's first output). */
export function decoderOutputNames(spec: DecoderSpec): string[] {
  switch (spec.type) {
    case 'blazeface': return [...spec.scoreOutputs, ...spec.boxOutputs];
    case 'centernet-heads': return [spec.heatmap, spec.boxes];
    default: return spec.output ? [spec.output] : [];
  }
}

/**
 * What a run decoded at once needs to fetch: the decoder's outputs (the model's first when it names
 * none). Undefined, fetch them all, when the model lacks one of them: the decoder then names the
 * missing one beside the model's real outputs. The rest stay in the runtime: the CenterNet's decoder
 * reads its 100 detections, and fetching its 5.2 MB keypoint map and its size map too cost about 5 ms
 * a run (116.5 against 110.7 ms FP32, 87.3 against 82.1 ms INT8, AVX2 EPYC, 1 thread, 2026-11-27).
 */
export function decoderFetches(spec: DecoderSpec, outputNames: readonly string[]): string[] | undefined {
  const named = decoderOutputNames(spec);
  const wanted = [...new Set(named.length ? named : outputNames.slice(0, 1))];
  return wanted.length && wanted.every((n) => outputNames.includes(n)) ? wanted : undefined;
}
