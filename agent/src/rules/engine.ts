/**
 * Evaluates alert rules on the tracked objects of each frame. State is kept per (rule, track):
 * whether the anchor point was inside, where it was, since when, and when the last alert went out,
 * so that enter/exit/crossing are edges (not levels) and a flickering track cannot flood alerts: a
 * per-track cooldown suppresses a repeat of the same alert kind by the same rule for the same track.
 * Times come from frame timestamps (ptsNs), so a replayed file gives the same alerts as live video.
 *
 * Where a track is (which side of a line, inside a zone or not) is decided on detected boxes only;
 * between detections a track keeps its last detected position for the rules. A predicted box carries
 * the Kalman velocity on: a person who slowed down short of a line was predicted past it and the next
 * detection took them back, which counted a crossing each way and alerted though nobody crossed (the
 * same at a zone edge: an enter and an exit). A crossing or an enter therefore shows at the first
 * detection after it, at most one detection interval late.
 *
 * A track that walks out of the picture between two detections is never detected past the line or
 * outside the zone it left; when the tracker removes it (lostBufferFrames after its last detection),
 * its prediction is judged if it reached the picture's edge the way the track was detected walking
 * (settleRemoved).
 */
import { randomUUID } from 'node:crypto';
import type { Point } from '../types.js';
import type { RemovedTrack, TrackedObject } from '../track/types.js';
import { ConfigError } from '../util/errors.js';
import { anchorPoint, crossing, pointInPolygon, side } from './geometry.js';
import type { AlertEvent, AlertKind } from './events.js';
import { DEFAULT_RULES_CONFIG, rulesConfigValidator, withRuleDefaults, type ResolvedRule, type RulesConfig } from './schema.js';

export interface RulesFrame {
  cameraId: string;
  frameIndex: number;
  ptsNs: number;
  tracks: readonly TrackedObject[];
  /**
   * Tracks the tracker removed in this frame (ByteTracker.removedTracks()): their rule state is
   * dropped, and those whose predicted box reached the edge of `picture` (along the way they were
   * detected walking) are judged once more.
   */
  removed?: readonly RemovedTrack[];
  /** Size of the camera's picture, source pixels. */
  picture?: { width: number; height: number };
}

export interface RulesEngineOptions {
  config?: Partial<RulesConfig>;
  /** Unique id per alert; injected so tests can steer it. */
  newId?: () => string;
  /** Wall clock in ms; injected so tests can steer it. */
  nowMs?: () => number;
}

interface TrackRuleState {
  inside: boolean | undefined;
  lastAnchor: Point | undefined;
  enteredAtNs: number | undefined;
  dwellAlerted: boolean;
  /** Entered below minScore: the enter alert waits until the track's score reaches it while inside. */
  enterPending: boolean;
  /** The track reached minScore during this visit (an exit is alerted only for such a visit). */
  confidentVisit: boolean;
  lastSeenFrame: number;
  lastAlertNs: Map<AlertKind, number>;
  /** The track as last reported (detected or predicted): a removed track's alert carries it. */
  lastTrack: TrackedObject;
  /** Detected anchors of about the last second, oldest first (see recordDetected). */
  detectedPath: DetectedAnchor[];
}

interface DetectedAnchor {
  p: Point;
  frameIndex: number;
  ptsNs: number;
}

/** A removed track's speed is measured over its last second of detections (or all of them, if fewer). */
const SPEED_WINDOW_NS = 1e9;
/**
 * A removed track's prediction is judged only when it lies within this fraction of the distance the
 * track's detected motion carries it over the same frames, from where that motion leads. On vtest
 * (intervals 1 to 10) the people who walked out of the picture gave 0.01 to 0.39. Without the check,
 * tracks reported detected only once (their filter velocity came from the two detections that
 * confirmed them) were predicted to the bottom edge and raised zone exits nobody made (intervals 8
 * and 10); another track's prediction at the edge was 5.6 away (interval 6).
 */
const PREDICTION_TOLERANCE = 0.5;

export interface RulesStats {
  alerts: number;
  suppressedByCooldown: number;
  lineCounts: Record<string, { ltr: number; rtl: number }>;
  occupancy: Record<string, number>;
}

/** Whether an alert at `lastNs` (undefined: none yet) still holds the next one back at `ptsNs`. */
function coolingDown(lastNs: number | undefined, ptsNs: number, cooldownMs: number): boolean {
  return lastNs !== undefined && (ptsNs - lastNs) / 1e6 < cooldownMs;
}

export class RulesEngine {
  private readonly cfg: RulesConfig;
  private readonly rules: ResolvedRule[];
  private readonly newId: () => string;
  private readonly nowMs: () => number;
  private readonly state = new Map<string, Map<number, TrackRuleState>>();
  private readonly occupancyNow = new Map<string, number>();
  private readonly occupancyAlertNs = new Map<string, number>();
  private readonly lineCounts = new Map<string, { ltr: number; rtl: number }>();
  private alerts = 0;
  private suppressed = 0;

  constructor(opts: RulesEngineOptions = {}) {
    this.cfg = rulesConfigValidator.parse({ ...DEFAULT_RULES_CONFIG, ...opts.config }, 'rules config');
    this.newId = opts.newId ?? randomUUID;
    this.nowMs = opts.nowMs ?? Date.now;
    this.rules = this.cfg.rules.map(withRuleDefaults);
    const ids = new Set<string>();
    for (const r of this.rules) {
      if (ids.has(r.id)) throw new ConfigError(`rule ids must be unique per camera but "${r.id}" appears twice; rename one`, [{ path: '/rules', expected: 'unique ids', received: r.id }]);
      ids.add(r.id);
      this.state.set(r.id, new Map());
      if (r.type === 'line') this.lineCounts.set(r.id, { ltr: 0, rtl: 0 });
    }
  }

  process(frame: RulesFrame): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (const rule of this.rules) this.processRule(rule, frame, out);
    this.alerts += out.length;
    return out;
  }

  /**
   * Forgets every track's state (inside or not, since when, its cooldowns), as the tracker forgets the
   * tracks when the camera reconnects: a visit does not go on across a gap in which nothing was seen,
   * so no dwell counts the outage and no exit or crossing is judged across it. Line counts, zone
   * occupancy and the occupancy cooldown stay: they describe the zone, not one track.
   */
  resetTracks(): void {
    for (const states of this.state.values()) states.clear();
  }

  /** The rules, with their defaults filled in. */
  get ruleList(): readonly ResolvedRule[] {
    return this.rules;
  }

  stats(): RulesStats {
    return {
      alerts: this.alerts,
      suppressedByCooldown: this.suppressed,
      lineCounts: Object.fromEntries([...this.lineCounts].map(([k, v]) => [k, { ...v }])),
      occupancy: Object.fromEntries(this.occupancyNow),
    };
  }

  private processRule(rule: ResolvedRule, frame: RulesFrame, out: AlertEvent[]): void {
    const states = this.state.get(rule.id)!;
    let inside = 0;
    let lastInside: TrackedObject | undefined;
    for (const t of frame.tracks) {
      if (rule.classes.length > 0 && !rule.classes.includes(t.label)) continue;
      // Every track of the rule's classes is followed; minScore decides only what alerts and counts.
      // Filtering the track out instead lost its position: when its score rose inside the zone it
      // looked "first seen inside" (no enter alert), and a line had no previous point to cross from.
      const confident = t.score >= rule.minScore;
      let st = states.get(t.trackId);
      if (!st) {
        st = { inside: undefined, lastAnchor: undefined, enteredAtNs: undefined, dwellAlerted: false, enterPending: false, confidentVisit: false, lastSeenFrame: frame.frameIndex, lastAlertNs: new Map(), lastTrack: t, detectedPath: [] };
        states.set(t.trackId, st);
      }
      st.lastSeenFrame = frame.frameIndex;
      st.lastTrack = t;
      const p = anchorPoint(t.box, rule.anchor);
      const emit = (kind: AlertKind, extra: Partial<AlertEvent> = {}) => this.emit({ rule, kind, frame, track: t, st: st!, out, extra });
      const detected = t.source === 'detected';
      if (detected) recordDetected(st.detectedPath, { p, frameIndex: frame.frameIndex, ptsNs: frame.ptsNs });
      if (rule.type === 'line') {
        if (detected && st.lastAnchor) {
          const dir = crossing(rule.from, rule.to, st.lastAnchor, p);
          if (dir && confident) {
            // Counted whether or not the cooldown holds the alert back: the counts are of crossings.
            this.lineCounts.get(rule.id)![dir]++;
            if (rule.direction === 'any' || rule.direction === dir) emit('line-cross', { direction: dir });
          }
        }
        // A point exactly on a line has no side; keep the last point that had one, so that a step
        // onto the line and the next step off it still count as one crossing.
        if (detected && side(rule.from, rule.to, p) !== 0) st.lastAnchor = p;
      } else {
        // A track this rule first meets on a predicted frame (rules reloaded, or its class changed,
        // between two detections) waits for its next detection.
        const now = detected ? pointInPolygon(p, rule.polygon) : st.inside;
        if (now === undefined) continue;
        if (now && confident) { inside++; lastInside = t; }
        const was = st.inside;
        // A track first seen inside has not been seen entering: no enter alert for it (it may be a
        // parked car or a person who was already there when the agent started).
        if (now && was === false) {
          st.enteredAtNs = frame.ptsNs;
          st.dwellAlerted = false;
          st.confidentVisit = false;
          st.enterPending = rule.type === 'zone' && rule.events.includes('enter');
        } else if (now && was === undefined) {
          st.enteredAtNs = frame.ptsNs;
        } else if (!now && was === true) {
          st.enteredAtNs = undefined;
          st.enterPending = false;
          if (rule.type === 'zone' && rule.events.includes('exit') && (confident || st.confidentVisit)) emit('zone-exit');
        }
        st.inside = now;
        if (now && confident) {
          st.confidentVisit = true;
          if (st.enterPending) { st.enterPending = false; emit('zone-enter'); }
        }
        if (rule.type === 'dwell' && now && confident && st.enteredAtNs !== undefined && !st.dwellAlerted) {
          const dwellMs = (frame.ptsNs - st.enteredAtNs) / 1e6;
          // Within the cooldown of this track's last dwell alert (it left and came back), the alert
          // waits for the cooldown to end instead of being lost for the whole visit.
          if (dwellMs >= rule.minDwellMs && !coolingDown(st.lastAlertNs.get('dwell'), frame.ptsNs, rule.cooldownMs)) {
            st.dwellAlerted = true;
            emit('dwell', { dwellMs });
          }
        }
      }
    }
    if (rule.type === 'zone') {
      const prev = this.occupancyNow.get(rule.id) ?? 0;
      this.occupancyNow.set(rule.id, inside);
      if (rule.maxOccupancy !== undefined && inside > rule.maxOccupancy && prev <= rule.maxOccupancy && lastInside) {
        const lastNs = this.occupancyAlertNs.get(rule.id);
        if (coolingDown(lastNs, frame.ptsNs, rule.cooldownMs)) this.suppressed++;
        else {
          this.occupancyAlertNs.set(rule.id, frame.ptsNs);
          out.push(this.event({ rule, kind: 'zone-occupancy', frame, track: lastInside, extra: { count: inside } }));
        }
      }
    }
    for (const r of frame.removed ?? []) {
      const st = states.get(r.trackId);
      if (st) this.settleRemoved({ rule, st, removed: r, frame, out });
      states.delete(r.trackId);
    }
    for (const [id, st] of states) if (frame.frameIndex - st.lastSeenFrame > this.cfg.forgetAfterFrames) states.delete(id);
  }

  /**
   * A track the tracker removed is judged once more, on the box the tracker last predicted for it,
   * when that box reached the picture's edge and lies where the track's detected motion leads: the
   * person walked out of the picture, so where the prediction carried them is evidence the detected
   * boxes lack. A person who walked off behind someone else and was never detected again was counted
   * neither leaving the zone nor crossing a line on the way out. A track lost mid-picture (hidden, or
   * missed by the detector) is not judged, nor one whose filter velocity its detections do not bear
   * out: its prediction has drifted on for the whole lost buffer and would count crossings and exits
   * nobody made.
   */
  private settleRemoved(a: { rule: ResolvedRule; st: TrackRuleState; removed: RemovedTrack; frame: RulesFrame; out: AlertEvent[] }): void {
    const { rule, st, frame, out } = a;
    const box = a.removed.box;
    const pic = frame.picture;
    if (!pic || !(box.x <= 0 || box.y <= 0 || box.x + box.w >= pic.width || box.y + box.h >= pic.height)) return;
    const p = anchorPoint(box, rule.anchor);
    if (!fitsDetectedMotion(st.detectedPath, p, frame.frameIndex)) return;
    // The alert carries the track as last reported, with the predicted box that was judged.
    const track: TrackedObject = { ...st.lastTrack, box: { ...box }, source: 'predicted' };
    const confident = track.score >= rule.minScore;
    const emit = (kind: AlertKind, extra: Partial<AlertEvent> = {}) => this.emit({ rule, kind, frame, track, st, out, extra });
    if (rule.type === 'line') {
      const dir = st.lastAnchor ? crossing(rule.from, rule.to, st.lastAnchor, p) : undefined;
      if (dir && confident) {
        this.lineCounts.get(rule.id)![dir]++;
        if (rule.direction === 'any' || rule.direction === dir) emit('line-cross', { direction: dir });
      }
    } else if (st.inside === true && !pointInPolygon(p, rule.polygon)) {
      if (rule.type === 'zone' && rule.events.includes('exit') && (confident || st.confidentVisit)) emit('zone-exit');
    }
  }

  private emit(a: { rule: ResolvedRule; kind: AlertKind; frame: RulesFrame; track: TrackedObject; st: TrackRuleState; out: AlertEvent[]; extra: Partial<AlertEvent> }): void {
    const last = a.st.lastAlertNs.get(a.kind);
    if (coolingDown(last, a.frame.ptsNs, a.rule.cooldownMs)) {
      this.suppressed++;
      return;
    }
    a.st.lastAlertNs.set(a.kind, a.frame.ptsNs);
    a.out.push(this.event(a));
  }

  private event(a: { rule: ResolvedRule; kind: AlertKind; frame: RulesFrame; track: TrackedObject; extra: Partial<AlertEvent> }): AlertEvent {
    const t = a.track;
    return {
      id: this.newId(), kind: a.kind, timeMs: this.nowMs(), ptsNs: a.frame.ptsNs, frameIndex: a.frame.frameIndex,
      cameraId: a.frame.cameraId, ruleId: a.rule.id, trackId: t.trackId, classId: t.classId, label: t.label,
      score: t.score, box: { ...t.box }, zone: a.rule.type === 'line' ? undefined : a.rule.id, ...a.extra,
    };
  }
}

/** Appends a detected anchor and drops those before the last one at least SPEED_WINDOW_NS older than it. */
function recordDetected(path: DetectedAnchor[], d: DetectedAnchor): void {
  path.push(d);
  while (path.length > 2 && d.ptsNs - path[1].ptsNs >= SPEED_WINDOW_NS) path.shift();
}

/**
 * Whether `p`, predicted at `frameIndex`, lies where the motion between the first and last anchors of
 * `path` leads (within PREDICTION_TOLERANCE of the distance it covers); a track detected once has no
 * motion to go by.
 */
function fitsDetectedMotion(path: readonly DetectedAnchor[], p: Point, frameIndex: number): boolean {
  const first = path[0];
  const last = path[path.length - 1];
  if (!first || last.frameIndex <= first.frameIndex) return false;
  const span = last.frameIndex - first.frameIndex;
  const frames = frameIndex - last.frameIndex;
  const vx = (last.p.x - first.p.x) / span;
  const vy = (last.p.y - first.p.y) / span;
  const travel = Math.hypot(vx, vy) * frames;
  return travel > 0 && Math.hypot(p.x - (last.p.x + vx * frames), p.y - (last.p.y + vy * frames)) <= PREDICTION_TOLERANCE * travel;
}
