/**
 * Which privacy regions cover a frame at a given pts. The privacy detector runs on some frames;
 * between them, regions are tracked: each region of every detection within `maxAgeMs` of the frame
 * is moved by its velocity (matched by IoU against the detection before it) and grown by
 * `growFracPerSecond` of its size per second of distance, and the box covers both where it was and
 * where it is predicted to be. Every such detection counts, not only the nearest: a face found in
 * one frame and missed in the next (detector flicker) is still hidden in the next. A frame farther
 * than `maxAgeMs` from any detection, or at/after a failed detection that no success has followed,
 * is not covered: the gate then withholds it (fails closed).
 *
 * Each camera (frame `sourceId`) has its own history: two cameras at one frame rate have the same
 * pts sequence, and one camera's detections must never cover (or a success clear the failure of)
 * another camera's frame.
 */
import type { Box } from '../types.js';
import { iou } from '../decode/nms.js';

export type PrivacyKind = 'face' | 'plate';

export interface PrivacyRegion {
  kind: PrivacyKind;
  box: Box;
  score: number;
  /** What found it: the face model, the text model inside a vehicle, or the vehicle's lower band. */
  source: 'face-model' | 'text-model' | 'band' | 'tracked';
  /** Padding for this region instead of the configured one (the plate band is already generous). */
  paddingFrac?: number;
}

export interface PrivacyObservation {
  ptsNs: number;
  regions: PrivacyRegion[];
  /** The camera the frame came from; frames without one share the '' history. */
  sourceId?: string;
}

export type Coverage =
  | { ok: true; regions: PrivacyRegion[]; ageMs: number }
  | { ok: false; reason: 'stale' | 'failed' | 'never'; ageMs?: number; detail: string };

export interface CoverageOptions {
  maxAgeMs: number;
  growFracPerSecond: number;
  /**
   * The most observations kept per camera (MAX_OBSERVATIONS when absent), whatever their age: the
   * bound on memory. Within it, those within `maxAgeMs` of the newest are kept (see `record`).
   */
  maxObservations?: number;
}

const NS_PER_MS = 1e6;
/**
 * Per camera: 500 ms (the default maxAgeMs) of observations at up to 480 runs a second, far above
 * any camera here; a window that would need more keeps its newest.
 */
const MAX_OBSERVATIONS = 256;

interface SourceState {
  history: PrivacyObservation[];
  lastFailure: { ptsNs: number; detail: string } | undefined;
}

export class PrivacyCoverage {
  private readonly sources = new Map<string, SourceState>();
  private readonly keep: number;

  constructor(private readonly opts: CoverageOptions) {
    this.keep = Math.max(2, opts.maxObservations ?? MAX_OBSERVATIONS);
  }

  private source(id: string | undefined): SourceState {
    let s = this.sources.get(id ?? '');
    if (!s) {
      s = { history: [], lastFailure: undefined };
      this.sources.set(id ?? '', s);
    }
    return s;
  }

  /**
   * Keeps the observations within `maxAgeMs` of the newest, and the one just before them (the
   * velocity of the oldest is measured against it), at most `maxObservations`. Eight were kept,
   * whatever the rate: at 30 fps 267 ms, so a face found 300-500 ms before a frame in which the
   * detector missed it no longer covered that frame. An observation far (over `maxAgeMs`) before the
   * newest is a camera whose pts started again: the history before it belongs to the old timeline.
   */
  record(obs: PrivacyObservation): void {
    const s = this.source(obs.sourceId);
    const maxAgeNs = this.opts.maxAgeMs * NS_PER_MS;
    const newest = s.history.at(-1)?.ptsNs;
    const ref = newest === undefined || obs.ptsNs > newest || newest - obs.ptsNs > maxAgeNs ? obs.ptsNs : newest;
    s.history.push(obs);
    s.history.sort((a, b) => a.ptsNs - b.ptsNs);
    const kept = s.history.filter((o) => Math.abs(o.ptsNs - ref) <= maxAgeNs);
    const before = s.history.filter((o) => o.ptsNs < ref - maxAgeNs).at(-1);
    s.history = (before ? [before, ...kept] : kept).slice(-this.keep);
    if (s.lastFailure && obs.ptsNs >= s.lastFailure.ptsNs) s.lastFailure = undefined;
  }

  recordFailure(ptsNs: number, detail: string, sourceId?: string): void {
    const s = this.source(sourceId);
    if (!s.lastFailure || ptsNs >= s.lastFailure.ptsNs) s.lastFailure = { ptsNs, detail };
  }

  /** Regions to hide in the frame at `ptsNs` of camera `sourceId`, or why the frame is not covered. */
  at(ptsNs: number, sourceId?: string): Coverage {
    const { history, lastFailure } = this.sources.get(sourceId ?? '') ?? { history: [], lastFailure: undefined };
    if (lastFailure && ptsNs >= lastFailure.ptsNs) {
      return { ok: false, reason: 'failed', detail: `the privacy detector failed at pts ${lastFailure.ptsNs} ns: ${lastFailure.detail}` };
    }
    if (history.length === 0) return { ok: false, reason: 'never', detail: 'the privacy detector has not run yet' };
    let best = 0;
    for (let i = 1; i < history.length; i++) {
      if (Math.abs(history[i].ptsNs - ptsNs) < Math.abs(history[best].ptsNs - ptsNs)) best = i;
    }
    const obs = history[best];
    const ageMs = Math.abs(ptsNs - obs.ptsNs) / NS_PER_MS;
    if (ageMs > this.opts.maxAgeMs) {
      return { ok: false, reason: 'stale', ageMs, detail: `the nearest privacy detection is ${ageMs.toFixed(0)} ms away (limit ${this.opts.maxAgeMs} ms)` };
    }
    // Nearest first, so each frame's own detections lead. Every detection's regions count, not only
    // the nearest's: boxes of one small face differ from run to run, and their union hides it
    // better; only a region inside one already taken (same padding: it hides nothing more) is left out.
    const near = history.map((o, i) => ({ o, i, dMs: Math.abs(ptsNs - o.ptsNs) / NS_PER_MS }))
      .filter((x) => x.dMs <= this.opts.maxAgeMs)
      .sort((a, b) => a.dMs - b.dMs);
    const regions: PrivacyRegion[] = [];
    for (const { o, i } of near) {
      for (const r of this.track(o, i > 0 ? history[i - 1] : undefined, ptsNs)) {
        // A region whose score is not a number stays, inside another or not: the redactor refuses it (a broken run).
        if (!Number.isFinite(r.score) || !regions.some((q) => q.paddingFrac === r.paddingFrac && contains(q.box, r.box))) regions.push(r);
      }
    }
    return { ok: true, regions, ageMs };
  }

  /** The regions of `obs` moved to `ptsNs`, with velocities from `prev`. */
  private track(obs: PrivacyObservation, prev: PrivacyObservation | undefined, ptsNs: number): PrivacyRegion[] {
    if (ptsNs === obs.ptsNs) return obs.regions;
    const dtS = (ptsNs - obs.ptsNs) / 1e9;
    return obs.regions.map((r) => {
      const v = prev ? centreVelocity(r, prev.regions, (obs.ptsNs - prev.ptsNs) / 1e9, (a, b) => a.kind === b.kind) : { vx: 0, vy: 0 };
      const moved = { x: r.box.x + v.vx * dtS, y: r.box.y + v.vy * dtS, w: r.box.w, h: r.box.h };
      const hull = union(r.box, moved);
      const grow = this.opts.growFracPerSecond * Math.abs(dtS);
      const gx = r.box.w * grow, gy = r.box.h * grow;
      return { ...r, source: 'tracked' as const, box: { x: hull.x - gx, y: hull.y - gy, w: hull.w + 2 * gx, h: hull.h + 2 * gy } };
    });
  }
}

/** A box inside another, padded by the same fraction of its size, stays inside the other's padded box. */
function contains(outer: Box, inner: Box): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h;
}

/**
 * Pixels per second of `item`'s box centre, from its best IoU match (above 0.1) among the `prev`
 * boxes that `same` admits, seen `dtS` seconds earlier; zero without one. Face regions and the
 * persons carried for head bands are moved with it.
 */
export function centreVelocity<T extends { box: Box }>(item: T, prev: readonly T[], dtS: number, same: (a: T, b: T) => boolean): { vx: number; vy: number } {
  let match: T | undefined;
  let bestIou = 0.1;
  for (const p of prev) {
    if (!same(p, item)) continue;
    const o = iou(p.box, item.box);
    if (o > bestIou) { bestIou = o; match = p; }
  }
  if (!match || dtS <= 0) return { vx: 0, vy: 0 };
  return {
    vx: (item.box.x + item.box.w / 2 - (match.box.x + match.box.w / 2)) / dtS,
    vy: (item.box.y + item.box.h / 2 - (match.box.y + match.box.h / 2)) / dtS,
  };
}

function union(a: Box, b: Box): Box {
  const x1 = Math.min(a.x, b.x), y1 = Math.min(a.y, b.y);
  const x2 = Math.max(a.x + a.w, b.x + b.w), y2 = Math.max(a.y + a.h, b.y + b.h);
  return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
}
