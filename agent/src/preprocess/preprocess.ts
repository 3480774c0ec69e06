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

export interface ModelInput {
  data: Float32Array | Uint8Array;
  dims: number[];
  dtype: 'float32' | 'uint8';
  transform: ResizeTransform;
}

export function planTransform(spec: PreprocessSpec, srcWidth: number, srcHeight: number): ResizeTransform {
  const dims = { srcWidth, srcHeight, dstWidth: spec.width, dstHeight: spec.height };
  return spec.resize === 'stretch' ? stretchTransform(dims) : letterboxTransform({ ...dims, align: spec.align });
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

/** Packed RGB at model size → tensor in the model's layout, order and normalisation. */
export function toTensor(rgb: Uint8Array, spec: PreprocessSpec): { data: Float32Array | Uint8Array; dims: number[] } {
  const { width: w, height: h } = spec;
  const n = w * h;
  const bgr = spec.channelOrder === 'BGR';
  const nchw = spec.layout === 'NCHW';
  const dims = nchw ? [1, 3, h, w] : [1, h, w, 3];
  if (spec.dtype === 'uint8') {
    if (!nchw && !bgr) return { data: rgb, dims };
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        const v = rgb[i * 3 + (bgr ? 2 - c : c)];
        out[nchw ? c * n + i : i * 3 + c] = v;
      }
    }
    return { data: out, dims };
  }
  // Fold (pixel * scale - mean) / std into one multiply-add per channel.
  const mul = [0, 1, 2].map((c) => spec.scale / spec.std[c]);
  const add = [0, 1, 2].map((c) => -spec.mean[c] / spec.std[c]);
  const out = new Float32Array(n * 3);
  const s0 = bgr ? 2 : 0, s2 = bgr ? 0 : 2;
  const [m0, m1, m2] = mul, [a0, a1, a2] = add;
  if (nchw) {
    for (let i = 0, p = 0; i < n; i++, p += 3) {
      out[i] = rgb[p + s0] * m0 + a0;
      out[n + i] = rgb[p + 1] * m1 + a1;
      out[2 * n + i] = rgb[p + s2] * m2 + a2;
    }
  } else {
    for (let p = 0; p < n * 3; p += 3) {
      out[p] = rgb[p + s0] * m0 + a0;
      out[p + 1] = rgb[p + 1] * m1 + a1;
      out[p + 2] = rgb[p + s2] * m2 + a2;
    }
  }
  return { data: out, dims };
}

export async function preprocess(image: RgbImage, spec: PreprocessSpec): Promise<ModelInput> {
  const transform = planTransform(spec, image.width, image.height);
  const rgb = await resizeRgb(image, transform, spec.padValue);
  const { data, dims } = toTensor(rgb, spec);
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
