/**
 * Runs a detector on the whole image and on a grid of overlapping tiles, then merges the results.
 * A 256×256 face model sees a 1920-px frame at 1/7.5 scale, so a 60-px face becomes 8 px and is
 * missed; on a 2×2 grid the same face is 4 times larger in the model input. Boxes from tiles are
 * offset back into the frame; duplicates (a face seen whole and in a tile) merge by NMS.
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
  constructor(private readonly inner: ImageDetector, private readonly grid: TileGrid, private readonly iouThreshold = 0.3) {}

  async detect(image: RgbImage): Promise<Detection[]> {
    const all: Detection[] = [...await this.inner.detect(image)];
    if (this.grid.cols * this.grid.rows > 1) {
      for (const t of tileRects(image.width, image.height, this.grid)) {
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
