/**
 * Hides regions of an image: each region is padded, clipped to the image, extracted with sharp,
 * blurred (Gaussian) or pixelated, and written back in place of the original pixels. Pixels outside
 * the padded regions are copied unchanged, byte for byte. The input image is never modified. A
 * region that cannot be placed (a non-finite or empty box) or whose score is not a number is an
 * error, never skipped.
 */
import sharp from 'sharp';
import type { Box, RgbImage } from '../types.js';
import { InputError } from '../util/errors.js';
import type { RedactionSpec } from './schema.js';

export interface PixelRect { x: number; y: number; w: number; h: number }

/** Pads a box by `paddingFrac` of its size on every side, rounds outwards to whole pixels and clips to the image. */
export function padRegion(box: Box, paddingFrac: number, width: number, height: number): PixelRect | undefined {
  const px = box.w * paddingFrac, py = box.h * paddingFrac;
  const x1 = Math.max(0, Math.floor(box.x - px));
  const y1 = Math.max(0, Math.floor(box.y - py));
  const x2 = Math.min(width, Math.ceil(box.x + box.w + px));
  const y2 = Math.min(height, Math.ceil(box.y + box.h + py));
  if (!(x2 > x1 && y2 > y1)) return undefined;
  return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
}

/** A region to hide, with its own padding when it should not get the configured one (e.g. a plate band). */
export interface RedactTarget {
  box: Box;
  paddingFrac?: number;
  /** The detection's score, when it came from one: one that is not a number marks a broken model run. */
  score?: number;
}

/**
 * Hides each target (a bare box gets `spec.paddingFrac`). `rects` holds the padded pixel rectangle
 * of each target that intersects the image, in order.
 */
export async function redactImage(image: RgbImage, targets: ReadonlyArray<Box | RedactTarget>, spec: RedactionSpec): Promise<{ image: RgbImage; rects: PixelRect[] }> {
  if (image.data.length !== image.width * image.height * 3) {
    throw new InputError(`Expected ${image.width * image.height * 3} bytes of packed RGB for ${image.width}x${image.height} but received ${image.data.length}`);
  }
  const out = new Uint8Array(image.data);
  const rects: PixelRect[] = [];
  for (const t of targets) {
    const target: RedactTarget = 'box' in t ? t : { box: t };
    // A box that cannot be placed (NaN from a broken decoder, an empty or negative size) hides
    // nothing: fail closed, so the gate withholds the image instead of releasing it as redacted.
    const { x, y, w, h } = target.box;
    if (![x, y, w, h].every(Number.isFinite) || !(w > 0 && h > 0)) {
      throw new InputError(`Expected a region with finite x, y and positive w, h but received ${JSON.stringify({ x, y, w, h })}; the image cannot be redacted`);
    }
    // Likewise a score that is not a number: the run that found it is broken, and what else it
    // missed or misplaced cannot be told.
    if (target.score !== undefined && !Number.isFinite(target.score)) {
      throw new InputError(`Expected a region with a finite detection score but received ${target.score}; the image cannot be redacted`);
    }
    const r = padRegion(target.box, target.paddingFrac ?? spec.paddingFrac, image.width, image.height);
    if (!r) continue;
    rects.push(r);
    // Each region is read from the original, so overlapping regions never blur an already blurred patch twice over.
    const patch = await hidePatch(image, r, spec);
    for (let y = 0; y < r.h; y++) {
      const dst = ((r.y + y) * image.width + r.x) * 3;
      out.set(patch.subarray(y * r.w * 3, (y + 1) * r.w * 3), dst);
    }
  }
  return { image: { width: image.width, height: image.height, data: out }, rects };
}

/** The whole image hidden at once (the gate's `blur-all` policy). */
export async function blurWholeImage(image: RgbImage, spec: RedactionSpec): Promise<RgbImage> {
  const rect = { x: 0, y: 0, w: image.width, h: image.height };
  return { width: image.width, height: image.height, data: await hidePatch(image, rect, { ...spec, blurStrength: Math.max(spec.blurStrength, 0.1) }) };
}

const MAX_DIRECT_SIGMA = 12;

async function hidePatch(image: RgbImage, r: PixelRect, spec: RedactionSpec): Promise<Uint8Array> {
  const src = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).extract({ left: r.x, top: r.y, width: r.w, height: r.h });
  let buf: Buffer;
  if (spec.method === 'pixelate') {
    const blocks = spec.pixelBlocks;
    const shorter = Math.min(r.w, r.h);
    const bw = Math.max(1, Math.round((r.w / shorter) * blocks)), bh = Math.max(1, Math.round((r.h / shorter) * blocks));
    // Two passes: average down to a few blocks, then nearest-neighbour back up. sharp applies one
    // resize per pipeline, so the small image goes through a second pipeline.
    const small = await src.resize(bw, bh, { fit: 'fill', kernel: 'cubic' }).raw().toBuffer();
    buf = await sharp(small, { raw: { width: bw, height: bh, channels: 3 } }).resize(r.w, r.h, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
  } else {
    const sigma = Math.max(spec.minBlurSigmaPx, spec.blurStrength * Math.min(r.w, r.h));
    if (sigma <= MAX_DIRECT_SIGMA) {
      buf = await src.blur(sigma).raw().toBuffer();
    } else {
      // A Gaussian of σ at full size ≈ σ/k at 1/k size, then a smooth upscale; sharp's blur cost
      // grows with σ, so large regions blur at reduced size (same look, bounded time).
      const k = sigma / MAX_DIRECT_SIGMA;
      const sw = Math.max(1, Math.round(r.w / k)), sh = Math.max(1, Math.round(r.h / k));
      const small = await src.resize(sw, sh, { fit: 'fill', kernel: 'linear' }).blur(MAX_DIRECT_SIGMA).raw().toBuffer();
      buf = await sharp(small, { raw: { width: sw, height: sh, channels: 3 } }).resize(r.w, r.h, { fit: 'fill', kernel: 'cubic' }).raw().toBuffer();
    }
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Packed RGB → JPEG, for images that leave the device; scaled down to `maxWidthPx` when wider. With
 * `maxBytes`, a JPEG over it is encoded again at a lower quality (down to 40), then at 3/4 of the width,
 * until it fits: a detailed 1920-px frame at quality 90 came to 429 KiB, and the alert carrying it
 * was refused whole.
 */
export async function encodeJpeg(image: RgbImage, quality: number, maxWidthPx?: number, maxBytes?: number): Promise<{ jpeg: Buffer; width: number; height: number }> {
  let width = image.width, height = image.height;
  if (maxWidthPx !== undefined && width > maxWidthPx) {
    height = Math.max(1, Math.round((height * maxWidthPx) / width));
    width = maxWidthPx;
  }
  for (let q = quality; ; ) {
    let p = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
    if (width !== image.width || height !== image.height) p = p.resize(width, height, { fit: 'fill' });
    const jpeg = await p.jpeg({ quality: q }).toBuffer();
    if (maxBytes === undefined || jpeg.length <= maxBytes || width <= 16) return { jpeg, width, height };
    if (q > 40) {
      q = Math.max(40, Math.round(q * 0.75));
    } else {
      width = Math.max(16, Math.round(width * 0.75));
      height = Math.max(1, Math.round((image.height * width) / image.width));
    }
  }
}
