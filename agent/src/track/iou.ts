import type { Box } from '../types.js';

/** Intersection over union of two boxes in the same pixel space; 0 when either is empty. */
export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

/** The box grown by `scale` times its width/height on every side (C-BIoU buffer, Yang et al. 2023). */
export function buffered(b: Box, scale: number): Box {
  if (scale === 0) return b;
  return { x: b.x - scale * b.w, y: b.y - scale * b.h, w: b.w * (1 + 2 * scale), h: b.h * (1 + 2 * scale) };
}
