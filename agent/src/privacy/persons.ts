/**
 * Head bands: a person the main detector found, in whose head band the face model found no face
 * (turned away, in profile, too small or too blurred for it, or simply missed), gets the top of
 * its box hidden, as a vehicle without readable plate text gets its plate band. A missed face is
 * worse than an extra blur: the face model alone let such heads out, and the gate called the
 * image covered.
 */
import type { Box, Detection } from '../types.js';
import { iou } from '../decode/nms.js';
import { centreVelocity, type PrivacyRegion } from './coverage.js';
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

/** The main detector's boxes given with one frame of a camera (the privacy stage's `observe()`). */
export interface BoxesObservation {
  ptsNs: number;
  boxes: readonly Detection[];
}

export interface PersonsAtOptions {
  /** Observations farther than this from the snapshot are not used (the gate's `maxAgeMs`). */
  maxAgeMs: number;
  /** Growth of a carried box, as a fraction of its size per second of distance (the gate's `growFracPerSecond`). */
  growFracPerSecond: number;
  /** Which labels are persons, and their band (`faces.headBand`). */
  band: Pick<HeadBandSpec, 'labels' | 'top' | 'bottom'>;
}

/**
 * Above this IoU, a person box of an older observation, moved to the snapshot's time, is taken for
 * a person already seen nearer in time. Above the main detector's NMS threshold (0.45 by default):
 * boxes it keeps apart in one frame are never merged here.
 */
const SAME_PERSON_IOU = 0.5;

/**
 * The persons whose head bands a snapshot at `ptsNs` is judged for: those given with the snapshot's
 * own frame, and those of the observations around it (within `maxAgeMs`, nearest first) that no
 * nearer observation has, each carried to `ptsNs` as the coverage tracks face regions (moved by its
 * velocity from its match in the observation before; its head band spans where it was and where it
 * is predicted, grown with the distance). The main detector misses people from frame to frame (the
 * tracker then holds the track lost and outputs nothing, and the raw detections lack it); a person
 * missed in the snapshot's frame only used to get no band there, and their turned-away head left.
 */
export function personsAt(observations: readonly BoxesObservation[], ptsNs: number, opts: PersonsAtOptions): Detection[] {
  const byPts = [...observations].sort((a, b) => a.ptsNs - b.ptsNs);
  const near = byPts.map((o, i) => ({ o, prev: i > 0 ? byPts[i - 1] : undefined, dS: (ptsNs - o.ptsNs) / 1e9 }))
    .filter((x) => Math.abs(x.dS) * 1000 <= opts.maxAgeMs)
    .sort((a, b) => Math.abs(a.dS) - Math.abs(b.dS));
  const persons: Detection[] = [];
  const seen: Box[] = [];
  for (const { o, prev, dS } of near) {
    // Compared only with nearer observations: one observation's boxes are the detector's own
    // (tracks and raw detections of one frame), taken as given, as they were before.
    const nearer = seen.length;
    for (const d of o.boxes) {
      if (!opts.band.labels.includes(d.label)) continue;
      const v = prev ? centreVelocity(d, prev.boxes, (o.ptsNs - prev.ptsNs) / 1e9, (a, b) => a.label === b.label) : { vx: 0, vy: 0 };
      const moved = { x: d.box.x + v.vx * dS, y: d.box.y + v.vy * dS, w: d.box.w, h: d.box.h };
      if (seen.slice(0, nearer).some((b) => iou(b, moved) >= SAME_PERSON_IOU)) continue;
      seen.push(moved);
      persons.push(dS === 0 ? d : { ...d, box: carried(d.box, moved, opts.growFracPerSecond * Math.abs(dS), opts.band) });
    }
  }
  return persons;
}

/**
 * A person box whose head band spans the bands of where the person was and where it is predicted,
 * grown by `grow` of the person's size on each side. The band is grown, not the box: the band of a
 * box grown at its top and bottom sits higher, above part of the head it was for.
 */
function carried(was: Box, moved: Box, grow: number, spec: Pick<HeadBandSpec, 'top' | 'bottom'>): Box {
  const hull = union(headBand(was, spec), headBand(moved, spec));
  const gx = was.w * grow, gy = was.h * grow;
  return boxOfBand({ x: hull.x - gx, y: hull.y - gy, w: hull.w + 2 * gx, h: hull.h + 2 * gy }, spec);
}

/**
 * One person seen as two boxes (a track's predicted box and the detection it was last matched to,
 * which it lags or leads): a person box whose head band spans both boxes' bands, so that the head is
 * hidden wherever either puts it, and a face found there excuses the one person once.
 */
export function personOfBoth(a: Box, b: Box, spec: Pick<HeadBandSpec, 'top' | 'bottom'>): Box {
  if (spec.top === spec.bottom) return union(a, b); // an empty band: no head to place
  return boxOfBand(union(headBand(a, spec), headBand(b, spec)), spec);
}

/** The person box whose head band is `band`. */
function boxOfBand(band: Box, spec: Pick<HeadBandSpec, 'top' | 'bottom'>): Box {
  const top = Math.min(spec.top, spec.bottom), span = Math.abs(spec.bottom - spec.top);
  if (span === 0) return band; // an empty band: nothing to carry
  const h = band.h / span;
  return { x: band.x, y: band.y - top * h, w: band.w, h };
}

function union(a: Box, b: Box): Box {
  const x1 = Math.min(a.x, b.x), y1 = Math.min(a.y, b.y);
  const x2 = Math.max(a.x + a.w, b.x + b.w), y2 = Math.max(a.y + a.h, b.y + b.h);
  return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
}

const centreX = (b: Box): number => b.x + b.w / 2;
const centreY = (b: Box): number => b.y + b.h / 2;

function centreInside(b: Box, area: Box): boolean {
  const cx = centreX(b), cy = centreY(b);
  return cx >= area.x && cx <= area.x + area.w && cy >= area.y && cy <= area.y + area.h;
}
