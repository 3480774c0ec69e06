/**
 * Cheap motion gate: subsample the packed RGB frame to a small grey thumbnail (nearest pixel, integer
 * luma weights from ITU-R BT.601: 0.299/0.587/0.114 ~ 77/150/29 over 256) and count the pixels whose
 * grey level changed by more than a threshold since the previous frame. A 64-px-wide thumbnail of a
 * 768x576 frame touches 3072 pixels, so the gate costs microseconds, not a resize.
 */
import type { RgbImage } from '../types.js';
import { InputError, received } from '../util/errors.js';
import { DEFAULT_MOTION_GATE_CONFIG, type MotionGateConfig } from './schema.js';

export interface MotionResult {
  motion: boolean;
  /** Fraction of thumbnail pixels that changed (0-1). */
  changedFraction: number;
}

export function greyThumbnail(img: RgbImage, thumbWidth: number): { width: number; height: number; data: Uint8Array } {
  if (img.data.length < img.width * img.height * 3) {
    throw new InputError(`Expected ${img.width * img.height * 3} bytes of packed RGB for ${img.width}x${img.height} but received ${received(img.data.length)} bytes`);
  }
  const width = Math.max(1, Math.min(thumbWidth, img.width));
  const height = Math.max(1, Math.round((img.height * width) / img.width));
  const out = new Uint8Array(width * height);
  for (let ty = 0; ty < height; ty++) {
    const sy = Math.min(img.height - 1, Math.floor(((ty + 0.5) * img.height) / height));
    const row = sy * img.width * 3;
    for (let tx = 0; tx < width; tx++) {
      const sx = Math.min(img.width - 1, Math.floor(((tx + 0.5) * img.width) / width));
      const o = row + sx * 3;
      out[ty * width + tx] = (77 * img.data[o] + 150 * img.data[o + 1] + 29 * img.data[o + 2]) >> 8;
    }
  }
  return { width, height, data: out };
}

export class MotionGate {
  private readonly cfg: MotionGateConfig;
  private prev: Uint8Array | undefined;

  constructor(config: Partial<MotionGateConfig> = {}) {
    this.cfg = { ...DEFAULT_MOTION_GATE_CONFIG, ...config };
  }

  /** Compares the frame with the previous one given to the gate. The first frame always counts as motion. */
  check(img: RgbImage): MotionResult {
    if (!this.cfg.enabled) return { motion: true, changedFraction: 1 };
    const thumb = greyThumbnail(img, this.cfg.thumbWidth);
    const prev = this.prev;
    this.prev = thumb.data;
    if (!prev || prev.length !== thumb.data.length) return { motion: true, changedFraction: 1 };
    let changed = 0;
    for (let i = 0; i < prev.length; i++) {
      if (Math.abs(prev[i] - thumb.data[i]) > this.cfg.pixelThreshold) changed++;
    }
    const changedFraction = changed / prev.length;
    return { motion: changedFraction >= this.cfg.minChangedFraction, changedFraction };
  }

  reset(): void {
    this.prev = undefined;
  }
}
