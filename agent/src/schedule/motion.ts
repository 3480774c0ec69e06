/**
 * Cheap motion gate: shrink the packed RGB frame to a small grey picture whose cells are the mean grey
 * level of their area (integer luma weights from ITU-R BT.601: 0.299/0.587/0.114 ~ 77/150/29 over
 * 256), and count the cells whose grey level changed by more than a threshold since the previous frame.
 *
 * Cells are at most MAX_CELL_PX source pixels wide, whatever the camera's resolution, and each is the
 * mean of a grid of pixels SAMPLE_STRIDE_PX apart. One pixel per cell of a 64-px-wide picture was
 * 30 px apart on a 1920x1080 camera: a person 40x100 px walking 4 px a frame changed one of the
 * sampled pixels only when an edge passed it, and the gate saw motion on none of 300 frames (the
 * vtest.avi people inside a 1080p frame: 38% of frames "still"). A mean is also steadier against
 * sensor noise than one pixel. The changed cells are then pooled onto the configured `thumbWidth`
 * grid (a block changed when any of its cells did), and `minChangedFraction` is the fraction of those
 * blocks: what the setting means does not change with the camera's resolution.
 *
 * Cost: the gate reads one pixel in SAMPLE_STRIDE_PX^2 (130 000 at 1920x1080, 28 000 at 768x576), a
 * fraction of a millisecond a frame where point sampling took tens of microseconds.
 */
import type { RgbImage } from '../types.js';
import { InputError, received } from '../util/errors.js';
import { DEFAULT_MOTION_GATE_CONFIG, type MotionGateConfig } from './schema.js';

/** Largest cell, in source pixels: a 64-px-wide picture of a 768x576 frame, where the gate was tuned. */
export const MAX_CELL_PX = 12;
/** Distance between the pixels averaged into a cell: an edge that moves 4 px always crosses a sample. */
export const SAMPLE_STRIDE_PX = 4;

export interface MotionResult {
  motion: boolean;
  /** Fraction of `thumbWidth`-grid blocks that changed (0-1). */
  changedFraction: number;
}

/**
 * Which source pixels each cell averages, along one axis: the pixels of one grid SAMPLE_STRIDE_PX
 * apart across the whole frame (evenly spaced, so that a step of that many pixels anywhere crosses a
 * sample), each cell taking those inside it; a cell narrower than the stride that holds none takes
 * its middle pixel.
 */
interface AxisSamples {
  /** First sampled position (pixels) of each cell. */
  first: Int32Array;
  /** Number of samples in each cell (at least 1), SAMPLE_STRIDE_PX apart from `first` on. */
  count: Int32Array;
}

function axisSamples(length: number, cells: number): AxisSamples {
  const first = new Int32Array(cells);
  const count = new Int32Array(cells);
  const off = Math.min(SAMPLE_STRIDE_PX >> 1, length - 1);
  for (let c = 0; c < cells; c++) {
    const a = Math.floor((c * length) / cells);
    const b = Math.max(a + 1, Math.floor(((c + 1) * length) / cells));
    const k0 = Math.max(0, Math.ceil((a - off) / SAMPLE_STRIDE_PX));
    const k1 = Math.ceil((b - off) / SAMPLE_STRIDE_PX); // first grid sample at or past b
    if (k1 > k0) {
      first[c] = off + k0 * SAMPLE_STRIDE_PX;
      count[c] = k1 - k0;
    } else {
      first[c] = (a + b - 1) >> 1;
      count[c] = 1;
    }
  }
  return { first, count };
}

/** Where a grey picture of `width` cells samples an image of one size; built once per size. */
interface GreyLayout {
  srcWidth: number;
  srcHeight: number;
  width: number;
  height: number;
  xs: AxisSamples;
  ys: AxisSamples;
}

function greyLayout(srcWidth: number, srcHeight: number, cellsWide: number): GreyLayout {
  const width = Math.max(1, Math.min(cellsWide, srcWidth));
  const height = Math.max(1, Math.min(srcHeight, Math.round((srcHeight * width) / srcWidth)));
  return { srcWidth, srcHeight, width, height, xs: axisSamples(srcWidth, width), ys: axisSamples(srcHeight, height) };
}

function checkImage(img: RgbImage): void {
  if (img.data.length < img.width * img.height * 3) {
    throw new InputError(`Expected ${img.width * img.height * 3} bytes of packed RGB for ${img.width}x${img.height} but received ${received(img.data.length)} bytes`);
  }
}

function greyCells(img: RgbImage, l: GreyLayout, sums: Float64Array, out: Uint8Array): void {
  const d = img.data;
  const { xs, ys, width } = l;
  const step = SAMPLE_STRIDE_PX * 3;
  for (let cy = 0; cy < l.height; cy++) {
    const base = cy * width;
    for (let cx = 0; cx < width; cx++) sums[base + cx] = 0;
    for (let k = 0, y = ys.first[cy]; k < ys.count[cy]; k++, y += SAMPLE_STRIDE_PX) {
      const row = y * img.width * 3;
      for (let cx = 0; cx < width; cx++) {
        let acc = 0;
        for (let n = xs.count[cx], o = row + xs.first[cx] * 3; n > 0; n--, o += step) acc += 77 * d[o] + 150 * d[o + 1] + 29 * d[o + 2];
        sums[base + cx] += acc;
      }
    }
    for (let cx = 0; cx < width; cx++) out[base + cx] = Math.round(sums[base + cx] / (256 * ys.count[cy] * xs.count[cx]));
  }
}

/** Grey picture `thumbWidth` cells wide (height follows the aspect ratio), each cell the mean of its area. */
export function greyThumbnail(img: RgbImage, thumbWidth: number): { width: number; height: number; data: Uint8Array } {
  checkImage(img);
  const l = greyLayout(img.width, img.height, thumbWidth);
  const data = new Uint8Array(l.width * l.height);
  greyCells(img, l, new Float64Array(data.length), data);
  return { width: l.width, height: l.height, data };
}

export class MotionGate {
  private readonly cfg: MotionGateConfig;
  private prev: Uint8Array | undefined;
  private cur: Uint8Array | undefined;
  private sums: Float64Array | undefined;
  private changed: Uint8Array | undefined;
  private layout: GreyLayout | undefined;
  /** Block (on the thumbWidth grid) of each cell, as column and row maps. */
  private blockOfX: Int32Array | undefined;
  private blockOfY: Int32Array | undefined;
  private blocksWide = 0;

  constructor(config: Partial<MotionGateConfig> = {}) {
    this.cfg = { ...DEFAULT_MOTION_GATE_CONFIG, ...config };
  }

  /** Compares the frame with the previous one given to the gate. The first frame always counts as motion. */
  check(img: RgbImage): MotionResult {
    if (!this.cfg.enabled) return { motion: true, changedFraction: 1 };
    checkImage(img);
    const l = this.layoutFor(img);
    const cur = this.cur!;
    greyCells(img, l, this.sums!, cur);
    const prev = this.prev;
    // Swap the buffers: this frame's picture is the next frame's reference.
    this.cur = prev ?? new Uint8Array(cur.length);
    this.prev = cur;
    if (!prev) return { motion: true, changedFraction: 1 };
    const changed = this.changed!.fill(0);
    const bx = this.blockOfX!;
    const by = this.blockOfY!;
    const thr = this.cfg.pixelThreshold;
    let n = 0;
    for (let cy = 0; cy < l.height; cy++) {
      const rowBlock = by[cy] * this.blocksWide;
      for (let cx = 0; cx < l.width; cx++) {
        const i = cy * l.width + cx;
        if (Math.abs(prev[i] - cur[i]) > thr) {
          const b = rowBlock + bx[cx];
          if (changed[b] === 0) { changed[b] = 1; n++; }
        }
      }
    }
    const changedFraction = n / changed.length;
    return { motion: changedFraction >= this.cfg.minChangedFraction, changedFraction };
  }

  reset(): void {
    this.prev = undefined;
  }

  private layoutFor(img: RgbImage): GreyLayout {
    const l = this.layout;
    if (l && l.srcWidth === img.width && l.srcHeight === img.height) return l;
    // The blocks the fraction is counted on, as before; the cells, as many per block as keep them
    // at most MAX_CELL_PX wide.
    const blocks = greyLayout(img.width, img.height, this.cfg.thumbWidth);
    const perBlock = Math.max(1, Math.ceil(img.width / (blocks.width * MAX_CELL_PX)));
    const cells = greyLayout(img.width, img.height, blocks.width * perBlock);
    this.blocksWide = blocks.width;
    this.blockOfX = Int32Array.from({ length: cells.width }, (_, c) => Math.floor((c * blocks.width) / cells.width));
    this.blockOfY = Int32Array.from({ length: cells.height }, (_, c) => Math.floor((c * blocks.height) / cells.height));
    this.changed = new Uint8Array(blocks.width * blocks.height);
    this.sums = new Float64Array(cells.width * cells.height);
    this.cur = new Uint8Array(cells.width * cells.height);
    // A new size (the source changed resolution) has no previous picture to compare with.
    this.prev = undefined;
    this.layout = cells;
    return cells;
  }
}
