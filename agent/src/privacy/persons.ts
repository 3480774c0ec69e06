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

/**
 * Head bands of the persons among `detections` that no face in `faces` stands for. Each face stands
 * for at most one person: of the persons whose band holds its centre, the one whose band centre is
 * nearest (pairs taken nearest first, each person taking at most one face). Bands span the whole
 * box width and the boxes of people standing close overlap, so a face that let every band holding
 * it go unhidden let person B's face uncover person A's turned-away head next to it.
 */
export function headBands(detections: readonly Detection[], faces: readonly PrivacyRegion[], spec: HeadBandSpec): PrivacyRegion[] {
  if (!spec.enabled) return [];
  const persons = detections
    .filter((d) => spec.labels.includes(d.label) && d.score >= spec.minPersonScore)
    .map((d) => ({ d, band: headBand(d.box, spec) }));
  const pairs: { person: number; face: number; dist: number }[] = [];
  persons.forEach(({ band }, person) => faces.forEach((f, face) => {
    if (centreInside(f.box, band)) pairs.push({ person, face, dist: Math.hypot(centreX(f.box) - centreX(band), centreY(f.box) - centreY(band)) });
  }));
  pairs.sort((a, b) => a.dist - b.dist);
  const personHasFace = new Set<number>(), faceTaken = new Set<number>();
  for (const p of pairs) {
    if (personHasFace.has(p.person) || faceTaken.has(p.face)) continue;
    personHasFace.add(p.person);
    faceTaken.add(p.face);
  }
  return persons
    .filter((_, i) => !personHasFace.has(i))
    .map(({ d, band }) => ({ kind: 'face', source: 'band', score: d.score, box: band, paddingFrac: spec.paddingFrac }));
}

const centreX = (b: Box): number => b.x + b.w / 2;
const centreY = (b: Box): number => b.y + b.h / 2;

function centreInside(b: Box, area: Box): boolean {
  const cx = centreX(b), cy = centreY(b);
  return cx >= area.x && cx <= area.x + area.w && cy >= area.y && cy <= area.y + area.h;
}
