/**
 * DB text-map decoder (Liao et al., "Real-time Scene Text Detection with Differentiable
 * Binarization", AAAI 2020), with the post-processing steps of PaddleOCR's DBPostProcess
 * (ppocr/postprocess/db_postprocess.py): binarise the probability map at `binaryThreshold`, take
 * connected regions, score each by its mean probability (drop below `boxThreshold`), then grow
 * ("unclip") each region by the distance D = A · r / L (A area, L perimeter, r = `unclipRatio`),
 * because the network is trained to predict a shrunk text kernel. PaddleOCR fits rotated minimum-area
 * rectangles; we approximate them by axis-aligned boxes, which is what redaction needs (a rotated
 * plate is covered by its axis-aligned hull). PaddleOCR's "fast" score is the mean probability
 * inside the fitted rectangle; ours is the mean over the region's own pixels, because an axis-aligned
 * box around slanted text holds much background that would drop real text below `boxThreshold`.
 */
import type { Detection } from '../types.js';
import { boxToSource } from '../preprocess/transform.js';
import { ModelError } from '../util/errors.js';
import type { DbDecoderSpec } from './spec.js';
import { checkRun, type Decoder } from './types.js';
import { pickOutput } from './yolo.js';

export interface TextRegion {
  /** Bounding box of the region in map pixels, x2/y2 exclusive. */
  x1: number; y1: number; x2: number; y2: number;
  areaPx: number;
  meanScore: number;
}

/**
 * 8-connected regions of `prob >= threshold`, by a scanline flood fill (no recursion). `stats.nan`
 * counts the NaN values of the map (each fails the threshold; a broken run, see checkRun).
 */
export function connectedRegions(prob: Float32Array, width: number, height: number, threshold: number, stats?: { nan: number }): TextRegion[] {
  const label = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  const regions: TextRegion[] = [];
  let next = 0;
  let nan = 0;
  for (let start = 0; start < prob.length; start++) {
    if (label[start] !== 0) continue;
    const v = prob[start];
    if (!(v >= threshold)) {
      if (v !== v) nan++;
      continue;
    }
    next++;
    let sp = 0;
    stack[sp++] = start;
    label[start] = next;
    let x1 = width, y1 = height, x2 = 0, y2 = 0, area = 0, sum = 0;
    while (sp > 0) {
      const p = stack[--sp];
      const x = p % width, y = (p - x) / width;
      area++; sum += prob[p];
      if (x < x1) x1 = x; if (x + 1 > x2) x2 = x + 1;
      if (y < y1) y1 = y; if (y + 1 > y2) y2 = y + 1;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          const q = ny * width + nx;
          if (label[q] === 0 && prob[q] >= threshold) { label[q] = next; stack[sp++] = q; }
        }
      }
    }
    regions.push({ x1, y1, x2, y2, areaPx: area, meanScore: sum / area });
  }
  if (stats) stats.nan = nan;
  return regions;
}

/** Grows a w×h box by D = A · ratio / L on every side (PaddleOCR's unclip, for a rectangle). */
export function unclipBox(box: { x: number; y: number; w: number; h: number }, ratio: number): { x: number; y: number; w: number; h: number } {
  const area = box.w * box.h;
  const perimeter = 2 * (box.w + box.h);
  const d = perimeter > 0 ? (area * ratio) / perimeter : 0;
  return { x: box.x - d, y: box.y - d, w: box.w + 2 * d, h: box.h + 2 * d };
}

export function createDbDecoder(spec: DbDecoderSpec): Decoder {
  return (outputs, ctx) => {
    const out = pickOutput(outputs, spec.output, ctx.outputNames, 'db');
    const dims = out.dims;
    if (dims.length !== 4 || dims[0] !== 1 || dims[1] !== 1) {
      throw new ModelError(`Expected a DB probability map [1, 1, H, W] but received [${dims.join(', ')}]; check decoder.type in the model's metadata`);
    }
    const height = dims[2], width = dims[3];
    // The map has the model input's size; scale in case a model outputs a reduced map.
    const sx = ctx.transform.dstWidth / width, sy = ctx.transform.dstHeight / height;
    // A NaN map fails the threshold everywhere: a broken run read as "no text here", which under
    // plates.fallback "no-model" left the plate unhidden.
    const stats = { nan: 0 };
    const regions = connectedRegions(out.data, width, height, spec.binaryThreshold, stats);
    checkRun(out.name, stats.nan, out.data.length, []);
    const dets: Detection[] = [];
    for (const r of regions) {
      if (r.meanScore < spec.boxThreshold) continue;
      const w = r.x2 - r.x1, h = r.y2 - r.y1;
      if (Math.min(w, h) < spec.minSizePx) continue;
      const grown = unclipBox({ x: r.x1, y: r.y1, w, h }, spec.unclipRatio);
      const model = { x: grown.x * sx, y: grown.y * sy, w: grown.w * sx, h: grown.h * sy };
      dets.push({ classId: 0, label: ctx.labels[0] ?? 'text', score: r.meanScore, box: boxToSource(ctx.transform, model) });
    }
    dets.sort((a, b) => b.score - a.score);
    return dets.slice(0, spec.maxDetections);
  };
}
