/**
 * Non-maximum suppression over candidate boxes. Greedy NMS as in Neubeck & Van Gool, "Efficient
 * Non-Maximum Suppression" (ICPR 2006): take the best-scored box, drop every other box that overlaps
 * it by more than the IoU threshold, repeat. Class-aware by default: boxes of different classes never
 * suppress each other. The weighted variant (MediaPipe's "WEIGHTED" overlap type) replaces each kept
 * box by the score-weighted mean of the cluster it suppressed, which steadies BlazeFace boxes.
 */
import type { Box, Point } from '../types.js';

export interface Candidate {
  classId: number;
  score: number;
  box: Box;
  keypoints?: Point[];
}

export interface NmsOptions {
  iouThreshold: number;
  maxDetections: number;
  /** When true, boxes of different classes suppress each other too. */
  classAgnostic?: boolean;
  /** Average each kept box with those it suppressed, weighted by score. */
  weighted?: boolean;
}

export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.w, b.x + b.w);
  const y2 = Math.min(a.y + a.h, b.y + b.h);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  if (inter <= 0) return 0;
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

/** Returns the kept candidates, best score first, at most `maxDetections`. Does not modify its input. */
export function nms<T extends Candidate>(candidates: readonly T[], opts: NmsOptions): T[] {
  const order = [...candidates].sort((a, b) => b.score - a.score);
  const removed = new Uint8Array(order.length);
  const kept: T[] = [];
  for (let i = 0; i < order.length && kept.length < opts.maxDetections; i++) {
    if (removed[i]) continue;
    const best = order[i];
    const cluster: T[] = [best];
    for (let j = i + 1; j < order.length; j++) {
      if (removed[j]) continue;
      const other = order[j];
      if (!opts.classAgnostic && other.classId !== best.classId) continue;
      if (iou(best.box, other.box) > opts.iouThreshold) {
        removed[j] = 1;
        cluster.push(other);
      }
    }
    kept.push(opts.weighted && cluster.length > 1 ? weightedMerge(cluster) : best);
  }
  return kept;
}

function weightedMerge<T extends Candidate>(cluster: readonly T[]): T {
  const head = cluster[0];
  let total = 0;
  let x = 0, y = 0, w = 0, h = 0;
  const kps = head.keypoints?.map(() => ({ x: 0, y: 0 }));
  for (const c of cluster) {
    total += c.score;
    x += c.box.x * c.score; y += c.box.y * c.score; w += c.box.w * c.score; h += c.box.h * c.score;
    if (kps && c.keypoints && c.keypoints.length === kps.length) {
      c.keypoints.forEach((p, k) => { kps[k].x += p.x * c.score; kps[k].y += p.y * c.score; });
    }
  }
  const merged: T = { ...head, box: { x: x / total, y: y / total, w: w / total, h: h / total } };
  if (kps) merged.keypoints = kps.map((p) => ({ x: p.x / total, y: p.y / total }));
  return merged;
}
