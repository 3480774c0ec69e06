/**
 * The metadata file that sits next to every model (`model.onnx` → `model.meta.json`): how to
 * preprocess frames for it, which decoder reads its outputs, and its labels. The agent never guesses
 * these from the file name.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { DecoderSpec } from '../decode/spec.js';
import { compileSchema } from '../util/schema.js';
import { ModelError } from '../util/errors.js';
import { parseJsonText } from '../config/json-text.js';

export const PreprocessSpec = Type.Object({
  width: Type.Integer({ minimum: 1, description: 'model input width in pixels' }),
  height: Type.Integer({ minimum: 1, description: 'model input height in pixels' }),
  layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NHWC')]),
  channelOrder: Type.Union([Type.Literal('RGB'), Type.Literal('BGR')], { default: 'RGB' }),
  /** letterbox keeps the aspect ratio and pads; stretch resizes each axis on its own. */
  resize: Type.Union([Type.Literal('letterbox'), Type.Literal('stretch')], { default: 'letterbox' }),
  /** letterbox: where the image sits inside the padded square. */
  align: Type.Union([Type.Literal('center'), Type.Literal('top-left')], { default: 'center' }),
  padValue: Type.Integer({ minimum: 0, maximum: 255, default: 114 }),
  /** value = (pixel * scale - mean[c]) / std[c], per channel in channelOrder. */
  scale: Type.Number({ default: 1 / 255 }),
  mean: Type.Array(Type.Number(), { minItems: 3, maxItems: 3, default: [0, 0, 0] }),
  std: Type.Array(Type.Number(), { minItems: 3, maxItems: 3, default: [1, 1, 1] }),
  dtype: Type.Union([Type.Literal('float32'), Type.Literal('uint8')], { default: 'float32' }),
  /** Round width and height up to a multiple of this before resizing into them (DB text detectors need multiples of 32). */
  multipleOf: Type.Optional(Type.Integer({ minimum: 1, description: 'width and height are rounded up to a multiple of this (for dynamic-size models)' })),
  /**
   * Dynamic-size models only (symbolic input height and width): the image is scaled up by at most
   * this factor, and the input shrinks to the scaled image (each side rounded up to multipleOf), no
   * longer filling width×height, which stay the largest input. A DB text detector given a 40-pixel
   * vehicle crop otherwise runs at 640×640, scaled up 14 times.
   */
  maxUpscale: Type.Optional(Type.Number({ minimum: 1, description: 'dynamic-size models: scale the image up by at most this factor; the input shrinks to the scaled image (sides rounded up to multipleOf) instead of filling width×height' })),
}, { additionalProperties: false });
export type PreprocessSpec = Static<typeof PreprocessSpec>;

export const ModelMetadata = Type.Object({
  name: Type.String({ minLength: 1 }),
  version: Type.String({ default: '0.0.0' }),
  task: Type.Union([Type.Literal('detect'), Type.Literal('text-detect')], { default: 'detect' }),
  input: Type.Optional(Type.String({ description: 'input tensor name; the first input when absent' })),
  preprocess: PreprocessSpec,
  decoder: DecoderSpec,
  labels: Type.Array(Type.String()),
  source: Type.Optional(Type.Object({
    package: Type.String(), version: Type.Optional(Type.String()), file: Type.Optional(Type.String()), license: Type.Optional(Type.String()),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type ModelMetadata = Static<typeof ModelMetadata>;

export const modelMetadataValidator = compileSchema(ModelMetadata);

/** `dir/model.onnx` → `dir/model.meta.json`. */
export function metadataPathFor(modelPath: string): string {
  return modelPath.replace(/\.(onnx|tflite|mlmodel|engine)$/i, '') + '.meta.json';
}

export async function loadModelMetadata(modelPath: string): Promise<ModelMetadata> {
  const metaPath = metadataPathFor(modelPath);
  if (!existsSync(metaPath)) {
    throw new ModelError(`Expected a metadata file ${metaPath} next to the model ${modelPath} but found none; ` +
      'write one (see configs/models/*.meta.json) or import the model with `fleetctl model import`, which writes it');
  }
  const text = await readFile(metaPath, 'utf8');
  let raw: unknown;
  try {
    // Line and column (with the line shown) rather than V8's byte offset: these files are written by hand.
    raw = parseJsonText(text, `Model metadata ${metaPath}`);
  } catch (err) {
    throw new ModelError((err as Error).message, { cause: err });
  }
  return modelMetadataValidator.parse(raw, `model metadata ${metaPath}`);
}
