/**
 * Rule shapes that validate but can never fire: coordinates written as fractions of the frame
 * (rules take source pixels, so {x: 0.1, y: 0.1} ... {x: 0.9, y: 0.9} is a zone under one pixel in
 * the top-left corner), and zones that lie wholly outside the camera's picture. Detected boxes are
 * clipped to the frame (preprocess/transform.ts), so no anchor ever lands in such a zone; the
 * config loaded, and the rule stayed silent.
 */
import type { Point } from '../types.js';
import type { SourceConfig } from '../capture/schema.js';
import type { Rule } from '../rules/schema.js';
import { pointInPolygon } from '../rules/geometry.js';
import { buildPipeline } from '../capture/pipelines.js';

export interface FrameSize { width: number; height: number }

/** The size of the frames a source delivers, where the config decides it (capture/pipelines.ts); undefined otherwise. */
export function configuredFrameSize(src: SourceConfig): FrameSize | undefined {
  // A raw pipeline that ends in its own appsink runs as written: width/height are never applied, and
  // its frames are whatever size it makes (a 1080p stream with width/height 640×360 left in the config).
  if (src.kind === 'pipeline' && buildPipeline(src) === src.pipeline) return undefined;
  if (src.width !== undefined && src.height !== undefined) return { width: src.width, height: src.height };
  if (src.width !== undefined || src.height !== undefined) return undefined;
  if (src.kind === 'jetson-csi') return { width: src.captureWidth, height: src.captureHeight };
  if (src.kind === 'test') return { width: 640, height: 480 };
  return undefined;
}

/** What is wrong with a rule's shape (field, what was expected), or undefined. */
export function ruleShapeProblem(rule: Rule, frame: FrameSize | undefined): { field: 'polygon' | 'from'; expected: string } | undefined {
  const points = rule.type === 'line' ? [rule.from, rule.to] : rule.polygon;
  const field = rule.type === 'line' ? 'from' : 'polygon';
  const size = frame ? ` (this camera's frames are ${frame.width}×${frame.height})` : '';
  if (points.every((p) => p.x <= 1 && p.y <= 1)) {
    return { field, expected: `coordinates in source pixels of the camera${size}; every coordinate here is at most 1, which covers at most one pixel ` +
      '(fractions of the frame? multiply x by the frame width and y by its height)' };
  }
  if (rule.type !== 'line' && frame && !overlapsFrame(rule.polygon, frame)) {
    return { field, expected: `a zone that overlaps the camera's picture, 0..${frame.width} × 0..${frame.height} source pixels; this one lies wholly outside it, so nothing is ever inside it` };
  }
  return undefined;
}

/** Whether the polygon and the frame rectangle share any point (touching counts). */
function overlapsFrame(polygon: readonly Point[], frame: FrameSize): boolean {
  const inFrame = (p: Point) => p.x >= 0 && p.y >= 0 && p.x <= frame.width && p.y <= frame.height;
  if (polygon.some(inFrame)) return true;
  const corners = [{ x: 0, y: 0 }, { x: frame.width, y: 0 }, { x: frame.width, y: frame.height }, { x: 0, y: frame.height }];
  // The frame wholly inside the zone.
  if (corners.some((c) => pointInPolygon(c, polygon))) return true;
  // An edge passing across the frame with both ends outside it.
  for (let i = 0; i < polygon.length; i++) {
    const a = polygon[i];
    const b = polygon[(i + 1) % polygon.length];
    for (let k = 0; k < 4; k++) if (segmentsMeet(a, b, corners[k], corners[(k + 1) % 4])) return true;
  }
  return false;
}

function orient(a: Point, b: Point, p: Point): number {
  return Math.sign((b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x));
}

/** Closed segments a-b and c-d share a point (collinear overlaps included). */
function segmentsMeet(a: Point, b: Point, c: Point, d: Point): boolean {
  const o1 = orient(a, b, c);
  const o2 = orient(a, b, d);
  const o3 = orient(c, d, a);
  const o4 = orient(c, d, b);
  if (o1 !== o2 && o3 !== o4) return true;
  const within = (p: Point, q: Point, r: Point) => Math.min(p.x, q.x) <= r.x && r.x <= Math.max(p.x, q.x) && Math.min(p.y, q.y) <= r.y && r.y <= Math.max(p.y, q.y);
  return (o1 === 0 && within(a, b, c)) || (o2 === 0 && within(a, b, d)) || (o3 === 0 && within(c, d, a)) || (o4 === 0 && within(c, d, b));
}
