/**
 * Runs a detector on the whole image and on a grid of overlapping tiles, then merges the results.
 * A 256×256 face model sees a 1920-px frame at 1/7.5 scale, so a 60-px face becomes 8 px and is
 * missed; on a 2×2 grid the same face is 4 times larger in the model input. Boxes from tiles are
 * offset back into the frame; duplicates (a face seen whole and in a tile) merge by NMS.
 *
 * The grid is `auto` by default: per frame, the fewest tiles along each side such that no tile is
 * longer than `autoMaxScale` model inputs. Measured on the six face-api group photos with BlazeFace
 * (256 px): faces of 8-10 px in the model input are found 15 of 21, of 12 px 20/21, of 14 px and
 * more 21/21. At 2.5 inputs per tile (640 px) a face of 32 px in the frame is 13 px in the model.
 */
import sharp from 'sharp';
import type { Detection, RgbImage } from '../types.js';
import { nms } from '../decode/nms.js';
import type { ImageDetector } from './plates.js';

export interface TileGrid {
  cols: number;
  rows: number;
  /** Overlap between neighbouring tiles as a fraction of the tile size, so a face on a seam is whole in one tile. */
  overlapFrac: number;
}

/** A grid whose sides may be `auto`: derived per frame from the frame size and the model input. */
export interface TileGridSpec {
  cols: number | 'auto';
  rows: number | 'auto';
  overlapFrac: number;
  /** For `auto`: the longest a tile may be, in model input sides. */
  autoMaxScale?: number;
}

export const DEFAULT_AUTO_MAX_SCALE = 2.5;
/** The schema's upper bound on cols and rows. */
const MAX_TILES_PER_SIDE = 8;

/** Tiles along one side of `sizePx` so each is at most `maxTilePx` long (neighbours overlapping by `overlapFrac`). */
function tilesAlong(sizePx: number, maxTilePx: number, overlapFrac: number): number {
  // A tile of n overlapping ones is size / (n - (n - 1) × overlap) long (tileRects).
  const n = Math.ceil((sizePx / maxTilePx - overlapFrac) / (1 - overlapFrac) - 1e-9);
  return Math.min(MAX_TILES_PER_SIDE, Math.max(1, n));
}

/** The grid for one frame: explicit sides as given, `auto` ones from the frame size and the model's input side. */
export function resolveGrid(width: number, height: number, spec: TileGridSpec, modelInputPx: number): TileGrid {
  const maxTilePx = modelInputPx * (spec.autoMaxScale ?? DEFAULT_AUTO_MAX_SCALE);
  return {
    cols: spec.cols === 'auto' ? tilesAlong(width, maxTilePx, spec.overlapFrac) : spec.cols,
    rows: spec.rows === 'auto' ? tilesAlong(height, maxTilePx, spec.overlapFrac) : spec.rows,
    overlapFrac: spec.overlapFrac,
  };
}

export interface TileRect { x: number; y: number; w: number; h: number }

export function tileRects(width: number, height: number, grid: TileGrid): TileRect[] {
  const rects: TileRect[] = [];
  const tw = Math.ceil(width / (grid.cols - (grid.cols - 1) * grid.overlapFrac));
  const th = Math.ceil(height / (grid.rows - (grid.rows - 1) * grid.overlapFrac));
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      const x = grid.cols === 1 ? 0 : Math.round((c * (width - tw)) / (grid.cols - 1));
      const y = grid.rows === 1 ? 0 : Math.round((r * (height - th)) / (grid.rows - 1));
      rects.push({ x, y, w: Math.min(tw, width - x), h: Math.min(th, height - y) });
    }
  }
  return rects;
}

export class TiledDetector implements ImageDetector {
  /**
   * `modelInputPx`: the shorter side of the model's input, needed only when a side of the grid is
   * `auto` (the grid is then chosen per frame size).
   */
  constructor(private readonly inner: ImageDetector, private readonly grid: TileGridSpec, private readonly iouThreshold = 0.3, private readonly modelInputPx?: number) {
    if ((grid.cols === 'auto' || grid.rows === 'auto') && !(modelInputPx !== undefined && modelInputPx > 0)) {
      throw new TypeError(`Expected the model's input size for an auto tile grid but received ${modelInputPx}`);
    }
  }

  /** The grid used for a frame of this size. */
  gridFor(width: number, height: number): TileGrid {
    return resolveGrid(width, height, this.grid, this.modelInputPx ?? 1);
  }

  /** The whole frame only: one model run, small faces missed (the privacy stage's per-frame pass). */
  async detectWholeFrame(image: RgbImage): Promise<Detection[]> {
    return this.inner.detect(image);
  }

  /** The whole frame and every tile of its grid: one model run each. */
  async detect(image: RgbImage): Promise<Detection[]> {
    const whole = await this.inner.detect(image);
    const grid = this.gridFor(image.width, image.height);
    if (grid.cols * grid.rows === 1) return whole;
    const all: Detection[] = [...whole];
    {
      for (const t of tileRects(image.width, image.height, grid)) {
        const buf = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
          .extract({ left: t.x, top: t.y, width: t.w, height: t.h }).raw().toBuffer();
        const dets = await this.inner.detect({ width: t.w, height: t.h, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) });
        for (const d of dets) {
          all.push({ ...d, box: { x: d.box.x + t.x, y: d.box.y + t.y, w: d.box.w, h: d.box.h }, keypoints: d.keypoints?.map((k) => ({ x: k.x + t.x, y: k.y + t.y })) });
        }
      }
    }
    return nms(all, { iouThreshold: this.iouThreshold, maxDetections: 1000, classAgnostic: true });
  }
}
