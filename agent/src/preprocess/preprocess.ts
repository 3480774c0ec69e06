/**
 * Frame → model input tensor. sharp does the resize (letterbox or stretch) from raw RGB; a single
 * pass then writes the model's layout (NCHW/NHWC), channel order and normalisation, as the model's
 * metadata says. The geometric transform is returned with the tensor so boxes map back exactly.
 */
import sharp from 'sharp';
import type { RgbImage } from '../types.js';
import type { PreprocessSpec } from '../model/metadata.js';
import { letterboxTransform, stretchTransform, type ResizeTransform } from './transform.js';
import { InputError } from '../util/errors.js';
import { modelInputSize, toTensor } from './tensor.js';

export { modelInputSize, toTensor };

export interface ModelInput {
  data: Float32Array | Uint8Array;
  dims: number[];
  dtype: 'float32' | 'uint8';
  transform: ResizeTransform;
}

/**
 * Where a source frame goes in the model input (width/height rounded up to preprocess.multipleOf).
 * With preprocess.maxUpscale (dynamic-size models) the frame is scaled up by at most that factor and
 * the input is only as large as the scaled frame, each side rounded up to multipleOf: the transform's
 * dstWidth/dstHeight are then the input's size for this frame. PaddleOCR's own text-detector
 * preprocessing (DetResizeForTest, limit_type "max") never scales up, and rounds each side to 32.
 */
export function planTransform(spec: PreprocessSpec, srcWidth: number, srcHeight: number): ResizeTransform {
  const size = modelInputSize(spec);
  if (spec.maxUpscale !== undefined) {
    const m = spec.multipleOf ?? 1;
    const stretch = spec.resize === 'stretch';
    const fit = Math.min(size.width / srcWidth, size.height / srcHeight, spec.maxUpscale);
    const side = (src: number, full: number): number => {
      const scale = stretch ? Math.min(full / src, spec.maxUpscale!) : fit;
      return Math.min(full, Math.max(m, Math.ceil(Math.round(src * scale) / m) * m));
    };
    const dims = { srcWidth, srcHeight, dstWidth: side(srcWidth, size.width), dstHeight: side(srcHeight, size.height) };
    return stretch ? stretchTransform(dims) : letterboxTransform({ ...dims, align: spec.align, maxScale: spec.maxUpscale });
  }
  const dims = { srcWidth, srcHeight, dstWidth: size.width, dstHeight: size.height };
  return spec.resize === 'stretch' ? stretchTransform(dims) : letterboxTransform({ ...dims, align: spec.align });
}

/** The preprocess spec at the input size `t` planned for one frame (it differs from the metadata's with maxUpscale). */
export function specForTransform(spec: PreprocessSpec, t: ResizeTransform): PreprocessSpec {
  const size = modelInputSize(spec);
  return size.width === t.dstWidth && size.height === t.dstHeight ? spec : { ...spec, width: t.dstWidth, height: t.dstHeight };
}

/** Resizes packed RGB to the model's input size, padding as the transform says. Returns packed RGB. */
export async function resizeRgb(image: RgbImage, t: ResizeTransform, padValue: number): Promise<Uint8Array> {
  checkImage(image);
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (t.contentWidth !== image.width || t.contentHeight !== image.height) {
    pipeline = pipeline.resize(t.contentWidth, t.contentHeight, { fit: 'fill', kernel: 'linear' });
  }
  const right = t.dstWidth - t.contentWidth - t.padX;
  const bottom = t.dstHeight - t.contentHeight - t.padY;
  if (t.padX || t.padY || right || bottom) {
    pipeline = pipeline.extend({ top: t.padY, bottom, left: t.padX, right, background: { r: padValue, g: padValue, b: padValue } });
  }
  const out = await pipeline.raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export async function preprocess(image: RgbImage, spec: PreprocessSpec): Promise<ModelInput> {
  const transform = planTransform(spec, image.width, image.height);
  const rgb = await resizeRgb(image, transform, spec.padValue);
  const { data, dims } = toTensor(rgb, specForTransform(spec, transform));
  return { data, dims, dtype: spec.dtype, transform };
}

function checkImage(image: RgbImage): void {
  if (!Number.isInteger(image.width) || image.width <= 0 || !Number.isInteger(image.height) || image.height <= 0) {
    throw new InputError(`Expected positive integer width and height for an RGB image but received ${image.width}x${image.height}`);
  }
  if (image.data.length !== image.width * image.height * 3) {
    throw new InputError(`Expected ${image.width * image.height * 3} bytes of packed RGB for ${image.width}x${image.height} but received ${image.data.length}`);
  }
}

/** Decodes an image file (JPEG, PNG, WebP, ...) to packed RGB, applying its EXIF orientation. */
export async function readImageFile(path: string): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new InputError(`Expected 3 channels after decoding ${path} but received ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`Cannot read image ${path}: ${(err as Error).message}. Expected a JPEG, PNG or WebP file`, { cause: err });
  }
}
