/**
 * ByteTrack-style multi-object tracker (Zhang et al., "ByteTrack: Multi-Object Tracking by
 * Associating Every Detection Box", ECCV 2022, Algorithm 1), with a constant-velocity Kalman filter
 * per track. Written from the paper's description.
 *
 * - First association: high-score detections against all tracked and lost tracks (IoU, optionally
 *   score-fused), Hungarian assignment. Boxes are compared grown by a buffer (C-BIoU, Yang et al.,
 *   WACV 2023): at a detection interval k a walking person moves k times further between two
 *   detections, often more than its own width, and plain IoU with the prediction drops to zero.
 * - Second association: low-score detections against the tracks still unmatched that were tracked in
 *   the previous frame — this recovers occluded people whose score dropped.
 * - Unconfirmed tracks (seen once) must match again in the next detected frame or are removed.
 * - Unmatched tracks become lost and are kept `lostBufferFrames` for re-identification. A track lost
 *   before a detector run is matched only to a detection of its shape (keepsShape; people only, see
 *   SHAPE_STABLE_LABELS), so a prediction carried on for many frames does not latch onto whatever lies
 *   where it ends.
 *
 * Frames without detection (`update(frameIndex, null)`) only predict: every frame carries boxes, and
 * each output says whether it was detected or predicted. The lost buffer and the unconfirmed rule
 * count detected frames for confirmation but real frames for age, so a detection interval k does not
 * shorten or stretch what "lost for 30 frames" means.
 */
import type { Box, Detection } from '../types.js';
import { BoxKalman } from './kalman.js';
import { buffered, iou } from './iou.js';
import { linearAssignment } from './assignment.js';
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from './schema.js';
import type { RemovedTrack, TrackedObject } from './types.js';

type TrackState = 'tracked' | 'lost';

interface Track {
  id: number;
  classId: number;
  label: string;
  score: number;
  kf: BoxKalman;
  state: TrackState;
  confirmed: boolean;
  hits: number;
  startFrame: number;
  lastDetectedFrame: number;
  /** Frames since the last detection that were held (static scene), not predicted. */
  heldFrames: number;
  lastDetection: Detection | undefined;
  /** The boxes of the last SHAPE_HISTORY matched detections, oldest first (see keepsShape()). */
  recentBoxes: Box[];
  /** Score-weighted votes of the matched detections' classes, older ones decayed (see vote()). */
  classVotes: Map<number, { label: string; votes: number }>;
}

/**
 * Each new detection weighs a track's earlier class votes down by this factor, so the class reported
 * is a score-weighted majority of roughly the last 1 / (1 - 0.8) = 5 detections: one mislabelled
 * detection does not flip a track, and a track born on a wrong label takes the right one as soon as
 * the right label outweighs it (with perClass: false a track kept its first detection's class forever).
 */
const CLASS_VOTE_DECAY = 0.8;

/**
 * A track lost before a detector run is matched only to a detection whose aspect ratio (w/h) is
 * within this factor of its last detected box's or of the median box of its last SHAPE_HISTORY
 * detections. The last box follows a shape that changes steadily (a person clipped at the picture's
 * edge as they leave it); the median ignores one partial detection (a person half behind the sign,
 * only their upper body boxed, who comes back whole). Area needs no bound of its own: IoU is at most
 * the ratio of the two areas, so the default IoU gate (matchIou 0.2) refuses boxes over 5x apart.
 * Measured on vtest.avi at detection intervals 1 to 10 (385 matches of lost tracks): people found
 * again changed aspect by at most 1.53x (half behind the sign, turning, leaving at the edge); a
 * stone on the grass at (177, 277), boxed 30x27 as a "person" at score ~0.41 all through the clip,
 * that the predictions of lost people (~35x85) ran onto and took over, by 2.47x to 2.87x.
 */
const MAX_LOST_ASPECT_CHANGE = 2;
const SHAPE_HISTORY = 5;

/**
 * The classes (by label) whose tracks the shape gate above applies to: those whose box keeps its
 * aspect while they are hidden. A person's does, whichever way they face (vtest, intervals 1-10:
 * at most 1.53x between a person lost and found again, against 2.47x-2.87x for the stone taken for
 * one); MAX_LOST_ASPECT_CHANGE was measured on people only. A vehicle's does not: a car seen side-on
 * (200x80, 2.5:1) that turns behind a bus and comes out seen from behind (100x90, 1.1:1) changed
 * 2.25x and was given a new track id (a second zone enter, its dwell restarted). Other classes are
 * matched as before 629b2c6, by IoU with the prediction alone.
 */
const SHAPE_STABLE_LABELS: ReadonlySet<string> = new Set(['person']);

export interface TrackerStats {
  activeTracks: number;
  lostTracks: number;
  tracksStarted: number;
  tracksRemoved: number;
}

export class ByteTracker {
  private readonly cfg: TrackerConfig;
  private tracks: Track[] = [];
  private nextId = 1;
  private lastFrame: number | undefined;
  private detectedFrames = 0;
  private started = 0;
  private removed = 0;
  private removedNow: RemovedTrack[] = [];

  constructor(config: Partial<TrackerConfig> = {}) {
    this.cfg = { ...DEFAULT_TRACKER_CONFIG, ...config };
  }

  /**
   * Advances to `frameIndex`. With detections, associates and updates; with `null`, only predicts.
   * Frame indices must increase; a gap of several frames predicts once per frame.
   */
  update(frameIndex: number, detections: Detection[] | null): TrackedObject[] {
    const steps = this.lastFrame === undefined ? 1 : Math.max(1, frameIndex - this.lastFrame);
    this.lastFrame = frameIndex;
    this.removedNow = [];
    for (const t of this.tracks) t.kf.predict(steps);
    if (detections) this.associate(frameIndex, detections);
    this.prune(frameIndex);
    return this.output(frameIndex, detections !== null);
  }

  /**
   * Advances to `frameIndex` for a frame in which the motion gate saw nothing move: boxes stay where
   * they are (no velocity step) and the frame does not count toward `maxPredictFrames` or the lost
   * buffer, so a person standing still in a static scene keeps a box while the detector rests.
   */
  hold(frameIndex: number): TrackedObject[] {
    const steps = this.lastFrame === undefined ? 1 : Math.max(1, frameIndex - this.lastFrame);
    this.lastFrame = frameIndex;
    this.removedNow = [];
    for (const t of this.tracks) t.heldFrames += steps;
    return this.output(frameIndex, false);
  }

  /**
   * The tracks removed by the last update() or hold(), lost past the lost buffer: they are not
   * reported again, so whoever keeps state per track (the rules) can settle it now.
   */
  removedTracks(): readonly RemovedTrack[] {
    return this.removedNow;
  }

  /**
   * Forgets every track, as at the start (their ids are not reused): the camera reconnected, and who
   * was where before the gap says nothing of who is there after it. The tracks are counted removed but
   * not reported in removedTracks(): their prediction across the gap is no evidence of where they went.
   */
  reset(): void {
    this.removed += this.tracks.length;
    this.tracks = [];
    this.removedNow = [];
    this.lastFrame = undefined;
    this.detectedFrames = 0;
  }

  /** Whether a track seen once waits for the detection that confirms it (or drops it). */
  hasTentative(): boolean {
    return this.tracks.some((t) => !t.confirmed);
  }

  stats(): TrackerStats {
    return {
      activeTracks: this.tracks.filter((t) => t.state === 'tracked').length,
      lostTracks: this.tracks.filter((t) => t.state === 'lost').length,
      tracksStarted: this.started,
      tracksRemoved: this.removed,
    };
  }

  private associate(frame: number, detections: Detection[]): void {
    const firstFrame = this.detectedFrames === 0;
    this.detectedFrames++;
    const cfg = this.cfg;
    const high = detections.filter((d) => d.score >= cfg.highScore);
    const low = detections.filter((d) => d.score >= cfg.lowScore && d.score < cfg.highScore);

    const confirmed = this.tracks.filter((t) => t.confirmed);
    const unconfirmed = this.tracks.filter((t) => !t.confirmed);
    // Tracks the previous detector run did not find: their match must keep their shape, for classes
    // whose shape holds (SHAPE_STABLE_LABELS). A track found then is matched as before, whatever its
    // shape now (a person turning, or half behind the post).
    const lost = new Set(confirmed.filter((t) => t.state === 'lost' && SHAPE_STABLE_LABELS.has(t.label)));

    // 1st association: high-score detections vs confirmed tracks (tracked + lost).
    const a1 = this.match(confirmed, high, { maxCost: 1 - cfg.matchIou, fuse: cfg.fuseScore, lost });
    for (const { row, col } of a1.matches) this.apply(confirmed[row], high[col], frame);
    let remainingHigh = a1.unmatchedCols.map((c) => high[c]);

    // 2nd association: low-score detections vs tracks unmatched above that were tracked (not lost).
    const pool = a1.unmatchedRows.map((r) => confirmed[r]).filter((t) => t.state === 'tracked');
    const a2 = this.match(pool, low, { maxCost: 1 - cfg.lowMatchIou, fuse: false });
    for (const { row, col } of a2.matches) this.apply(pool[row], low[col], frame);
    for (const r of a2.unmatchedRows) pool[r].state = 'lost';

    // Observation-centric recovery (OC-SORT, Cao et al., CVPR 2023, sec. 3.3): a track still
    // unmatched is compared by its last *observed* box, not its prediction. A person who stopped
    // behind a post while the filter kept moving them on is found again where they were last seen.
    const matched2 = new Set(a2.matches.map((m) => pool[m.row]));
    const stale = a1.unmatchedRows.map((r) => confirmed[r]).filter((t) => !matched2.has(t) && t.lastDetection !== undefined);
    const a1b = this.match(stale, remainingHigh, { maxCost: 1 - cfg.matchIou, fuse: cfg.fuseScore, boxOf: (t) => t.lastDetection!.box, lost });
    for (const { row, col } of a1b.matches) {
      // Restart the filter at the new observation: the old velocity is what lost the track.
      stale[row].kf = new BoxKalman(remainingHigh[col].box);
      this.apply(stale[row], remainingHigh[col], frame);
    }
    remainingHigh = a1b.unmatchedCols.map((c) => remainingHigh[c]);

    // Unconfirmed tracks get one more chance with the remaining high-score detections.
    const a3 = this.match(unconfirmed, remainingHigh, { maxCost: 1 - cfg.unconfirmedMatchIou, fuse: cfg.fuseScore });
    for (const { row, col } of a3.matches) {
      this.apply(unconfirmed[row], remainingHigh[col], frame);
      unconfirmed[row].confirmed = true;
    }
    const dropUnconfirmed = new Set(a3.unmatchedRows.map((r) => unconfirmed[r]));
    remainingHigh = a3.unmatchedCols.map((c) => remainingHigh[c]);

    if (dropUnconfirmed.size > 0) {
      this.removed += dropUnconfirmed.size;
      this.tracks = this.tracks.filter((t) => !dropUnconfirmed.has(t));
    }

    for (const d of remainingHigh) {
      if (d.score < cfg.newTrackScore) continue;
      this.started++;
      this.tracks.push({
        id: this.nextId++, classId: d.classId, label: d.label, score: d.score,
        kf: new BoxKalman(d.box), state: 'tracked',
        // ByteTrack confirms tracks born in the very first frame at once (nothing to confirm against).
        confirmed: firstFrame, hits: 1, startFrame: frame, lastDetectedFrame: frame, heldFrames: 0, lastDetection: d,
        recentBoxes: [d.box],
        classVotes: new Map([[d.classId, { label: d.label, votes: d.score }]]),
      });
    }
  }

  /**
   * Hungarian assignment of `dets` to `tracks` by buffered IoU. `boxOf` gives the box a track is
   * compared by (its prediction by default); tracks in `lost` take only detections of their shape.
   */
  private match(tracks: Track[], dets: Detection[], opts: { maxCost: number; fuse: boolean; boxOf?: (t: Track) => Box; lost?: ReadonlySet<Track> }) {
    const { maxCost, fuse, boxOf = (t: Track) => t.kf.box(), lost } = opts;
    const b = this.cfg.matchBuffer;
    const predicted = tracks.map((t) => buffered(boxOf(t), b));
    const detBoxes = dets.map((d) => buffered(d.box, b));
    // Gate on the (buffered) IoU itself; score fusion (ByteTrack fuse_score) only ranks candidates
    // that passed the gate, it must not reject a good overlap of a weaker detection.
    const cost = tracks.map((t, i) => dets.map((d, j) => {
      if (this.cfg.perClass && d.classId !== t.classId) return Infinity;
      if (lost?.has(t) && !keepsShape(t, d.box)) return Infinity;
      const o = iou(predicted[i], detBoxes[j]);
      if (o < 1 - maxCost || o <= 0) return Infinity;
      return fuse ? Math.min(maxCost, 1 - o * d.score) : 1 - o;
    }));
    return linearAssignment(cost, maxCost, dets.length);
  }

  private apply(t: Track, d: Detection, frame: number): void {
    t.kf.update(d.box);
    t.state = 'tracked';
    t.score = d.score;
    t.hits++;
    t.lastDetectedFrame = frame;
    t.heldFrames = 0;
    t.lastDetection = d;
    t.recentBoxes.push(d.box);
    if (t.recentBoxes.length > SHAPE_HISTORY) t.recentBoxes.shift();
    vote(t, d);
  }

  private prune(frame: number): void {
    const keep: Track[] = [];
    for (const t of this.tracks) {
      if (t.state === 'lost' && frame - t.lastDetectedFrame - t.heldFrames > this.cfg.lostBufferFrames) {
        this.removed++;
        this.removedNow.push({ trackId: t.id, box: t.kf.box() });
        continue;
      }
      keep.push(t);
    }
    this.tracks = keep;
  }

  private output(frame: number, detectedFrame: boolean): TrackedObject[] {
    const out: TrackedObject[] = [];
    for (const t of this.tracks) {
      if (!t.confirmed || t.state !== 'tracked') continue;
      const since = frame - t.lastDetectedFrame;
      const detectedNow = detectedFrame && since === 0 && t.lastDetection !== undefined;
      if (!detectedNow && since - t.heldFrames > this.cfg.maxPredictFrames) continue;
      const v = t.kf.velocity();
      out.push({
        trackId: t.id, classId: t.classId, label: t.label, score: t.score,
        box: detectedNow ? { ...t.lastDetection!.box } : t.kf.box(),
        source: detectedNow ? 'detected' : 'predicted',
        framesSinceDetection: since, hits: t.hits, startFrame: t.startFrame,
        vxPxPerFrame: v.vxPxPerFrame, vyPxPerFrame: v.vyPxPerFrame,
      });
    }
    return out;
  }
}

/** Whether `box` has the shape of the track's last detected box or of its recent median box (MAX_LOST_ASPECT_CHANGE). */
function keepsShape(t: Track, box: Box): boolean {
  const recent = t.recentBoxes;
  const references = [recent[recent.length - 1], { w: median(recent.map((r) => r.w)), h: median(recent.map((r) => r.h)) }];
  return references.some((r) => {
    // (box.w / box.h) / (r.w / r.h); a side of 0 gives Infinity or NaN, which fail.
    const change = (box.w * r.h) / (box.h * r.w);
    return change <= MAX_LOST_ASPECT_CHANGE && change >= 1 / MAX_LOST_ASPECT_CHANGE;
  });
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Adds a matched detection's class vote and sets the track's class to the one with most votes. */
function vote(t: Track, d: Detection): void {
  for (const v of t.classVotes.values()) v.votes *= CLASS_VOTE_DECAY;
  const mine = t.classVotes.get(d.classId);
  if (mine) mine.votes += d.score;
  else t.classVotes.set(d.classId, { label: d.label, votes: d.score });
  let best = t.classVotes.get(t.classId);
  for (const [classId, v] of t.classVotes) {
    if (!best || v.votes > best.votes) { best = v; t.classId = classId; t.label = v.label; }
  }
}
