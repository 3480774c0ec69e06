/**
 * Head bands: a person the main detector found, in whose head band the face model found no face
 * (turned away, in profile, too small or too blurred for it, or simply missed), gets the top of
 * its box hidden, as a vehicle without readable plate text gets its plate band. A missed face is
 * worse than an extra blur: the face model alone let such heads out, and the gate called the
 * image covered.
 */
import type { Box, Detection } from '../types.js';
import type { PrivacyRegion } from './coverage.js';
import type { HeadBandSpec } from './schema.js';

/** The configured top band of a person box. */
export function headBand(person: Box, spec: Pick<HeadBandSpec, 'top' | 'bottom'>): Box {
  const top = Math.min(spec.top, spec.bottom), bottom = Math.max(spec.top, spec.bottom);
  return { x: person.x, y: person.y + person.h * top, w: person.w, h: person.h * (bottom - top) };
}

/** Head bands of the persons among `detections` whose band holds the centre of none of `faces`. */
export function headBands(detections: readonly Detection[], faces: readonly PrivacyRegion[], spec: HeadBandSpec): PrivacyRegion[] {
  if (!spec.enabled) return [];
  const out: PrivacyRegion[] = [];
  for (const d of detections) {
    if (!spec.labels.includes(d.label) || d.score < spec.minPersonScore) continue;
    const band = headBand(d.box, spec);
    if (faces.some((f) => centreInside(f.box, band))) continue;
    out.push({ kind: 'face', source: 'band', score: d.score, box: band, paddingFrac: spec.paddingFrac });
  }
  return out;
}

function centreInside(b: Box, area: Box): boolean {
  const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
  return cx >= area.x && cx <= area.x + area.w && cy >= area.y && cy <= area.y + area.h;
}
