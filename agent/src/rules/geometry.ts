import type { Box, Point } from '../types.js';

/** Even-odd ray casting (Shimrat 1962; the W. R. Franklin PNPOLY formulation). */
export function pointInPolygon(p: Point, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const a = polygon[i];
    const b = polygon[j];
    if ((a.y > p.y) !== (b.y > p.y) && p.x < ((b.x - a.x) * (p.y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

/** z of (b - a) x (p - a). In image coordinates (y down), > 0 means p is right of a->b. */
export function side(a: Point, b: Point, p: Point): number {
  return (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
}

/**
 * If the movement p0 -> p1 crosses the segment a-b, returns 'ltr' (from the left of a->b to its
 * right, looking from a to b in image coordinates) or 'rtl'; otherwise undefined. Touching the line
 * without passing it is no crossing.
 */
export function crossing(a: Point, b: Point, p0: Point, p1: Point): 'ltr' | 'rtl' | undefined {
  const s0 = side(a, b, p0);
  const s1 = side(a, b, p1);
  if (s0 === 0 || s1 === 0 || (s0 > 0) === (s1 > 0)) return undefined;
  // The movement must also straddle the line through a-b's endpoints (segment intersection test).
  const t0 = side(p0, p1, a);
  const t1 = side(p0, p1, b);
  if (t0 !== 0 && t1 !== 0 && (t0 > 0) === (t1 > 0)) return undefined;
  return s0 < 0 ? 'ltr' : 'rtl';
}

export function anchorPoint(box: Box, anchor: 'bottom-center' | 'center'): Point {
  return anchor === 'center' ? { x: box.x + box.w / 2, y: box.y + box.h / 2 } : { x: box.x + box.w / 2, y: box.y + box.h };
}
