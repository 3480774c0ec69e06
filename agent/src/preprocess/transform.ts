/**
 * The geometric part of preprocessing, kept with every inference so that boxes found in model-input
 * pixels map back to source pixels exactly: model = source * scale + pad, per axis.
 */
import type { Box, Point } from '../types.js';

export interface ResizeTransform {
  srcWidth: number;
  srcHeight: number;
  /** Model input size in pixels. */
  dstWidth: number;
  dstHeight: number;
  scaleX: number;
  scaleY: number;
  /** Offset of the resized image inside the model input, in model pixels. */
  padX: number;
  padY: number;
  /** Size of the resized image inside the model input (the rest is padding). */
  contentWidth: number;
  contentHeight: number;
}

/** `maxScale`: the image is scaled by at most this much (it may then fill neither side of the input). */
export function letterboxTransform(opts: { srcWidth: number; srcHeight: number; dstWidth: number; dstHeight: number; align?: 'center' | 'top-left'; maxScale?: number }): ResizeTransform {
  const { srcWidth, srcHeight, dstWidth, dstHeight } = opts;
  const scale = Math.min(dstWidth / srcWidth, dstHeight / srcHeight, opts.maxScale ?? Infinity);
  const contentWidth = Math.max(1, Math.min(dstWidth, Math.round(srcWidth * scale)));
  const contentHeight = Math.max(1, Math.min(dstHeight, Math.round(srcHeight * scale)));
  const center = (opts.align ?? 'center') === 'center';
  const padX = center ? Math.floor((dstWidth - contentWidth) / 2) : 0;
  const padY = center ? Math.floor((dstHeight - contentHeight) / 2) : 0;
  // Use the exact scale of the rounded content size so that the round trip is exact at the borders.
  return { srcWidth, srcHeight, dstWidth, dstHeight, scaleX: contentWidth / srcWidth, scaleY: contentHeight / srcHeight, padX, padY, contentWidth, contentHeight };
}

export function stretchTransform(opts: { srcWidth: number; srcHeight: number; dstWidth: number; dstHeight: number }): ResizeTransform {
  const { srcWidth, srcHeight, dstWidth, dstHeight } = opts;
  return { srcWidth, srcHeight, dstWidth, dstHeight, scaleX: dstWidth / srcWidth, scaleY: dstHeight / srcHeight, padX: 0, padY: 0, contentWidth: dstWidth, contentHeight: dstHeight };
}

export function pointToSource(t: ResizeTransform, p: Point): Point {
  return { x: (p.x - t.padX) / t.scaleX, y: (p.y - t.padY) / t.scaleY };
}

export function pointToModel(t: ResizeTransform, p: Point): Point {
  return { x: p.x * t.scaleX + t.padX, y: p.y * t.scaleY + t.padY };
}

/** A box in model-input pixels → source pixels, clipped to the source frame. */
export function boxToSource(t: ResizeTransform, b: Box): Box {
  const x1 = clamp((b.x - t.padX) / t.scaleX, 0, t.srcWidth);
  const y1 = clamp((b.y - t.padY) / t.scaleY, 0, t.srcHeight);
  const x2 = clamp((b.x + b.w - t.padX) / t.scaleX, 0, t.srcWidth);
  const y2 = clamp((b.y + b.h - t.padY) / t.scaleY, 0, t.srcHeight);
  return { x: x1, y: y1, w: Math.max(0, x2 - x1), h: Math.max(0, y2 - y1) };
}

export function boxToModel(t: ResizeTransform, b: Box): Box {
  return { x: b.x * t.scaleX + t.padX, y: b.y * t.scaleY + t.padY, w: b.w * t.scaleX, h: b.h * t.scaleY };
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
