/**
 * Average precision at IoU 0.5 (PASCAL VOC 2010+ all-point interpolation: area under the
 * monotone precision envelope), per class, of predictions against ground-truth boxes, over many frames.
 * Each ground truth is matched at most once, by the highest-scored prediction first.
 */
import type { Box, Detection } from '../../../agent/src/types.js';
import { iou } from '../../../agent/src/decode/index.js';
import type { DecoderSpec } from '../../../agent/src/decode/spec.js';

/**
 * The decoder for a candidate's detections in an agreement measurement: the reference's decoder at half
 * its score threshold. AP integrates precision over the candidate's ranking (COCO keeps up to 100
 * detections per image whatever their score), so a box whose score slips just under the reference's
 * threshold must still count as found, ranked low, not as a miss.
 */
export function candidateDecoderSpec(reference: DecoderSpec): DecoderSpec {
  const spec = structuredClone(reference);
  if ('scoreThreshold' in spec) spec.scoreThreshold = spec.scoreThreshold / 2;
  return spec;
}

export interface FrameDetections {
  truth: Detection[];
  predicted: Detection[];
}

export interface ClassAp {
  classId: number;
  label: string;
  ap: number;
  truths: number;
  predictions: number;
}

export function averagePrecision(frames: FrameDetections[], iouThreshold = 0.5): ClassAp[] {
  const classes = new Map<number, string>();
  for (const f of frames) for (const d of [...f.truth, ...f.predicted]) classes.set(d.classId, d.label);
  const out: ClassAp[] = [];
  for (const [classId, label] of [...classes].sort((a, b) => a[0] - b[0])) {
    const preds: { frame: number; score: number; box: Box }[] = [];
    const truths: Box[][] = [];
    let nTruth = 0;
    frames.forEach((f, k) => {
      const t = f.truth.filter((d) => d.classId === classId).map((d) => d.box);
      truths.push(t);
      nTruth += t.length;
      for (const d of f.predicted) if (d.classId === classId) preds.push({ frame: k, score: d.score, box: d.box });
    });
    preds.sort((a, b) => b.score - a.score);
    const used = truths.map((t) => new Array<boolean>(t.length).fill(false));
    const tp: number[] = [];
    for (const p of preds) {
      let best = -1, bestIou = iouThreshold;
      truths[p.frame].forEach((b, j) => { const v = iou(p.box, b); if (!used[p.frame][j] && v >= bestIou) { bestIou = v; best = j; } });
      if (best >= 0) used[p.frame][best] = true;
      tp.push(best >= 0 ? 1 : 0);
    }
    out.push({ classId, label, ap: nTruth === 0 ? 0 : apFromMatches(tp, nTruth), truths: nTruth, predictions: preds.length });
  }
  return out;
}

/** Detection counts of a candidate against the truth at one score threshold, over many frames. */
export interface ThresholdMatch {
  truths: number;
  predictions: number;
  /** Predictions matched one-to-one to a truth of their class at IoU ≥ 0.5. */
  matched: number;
}

/**
 * One-to-one matches of predictions to truths of the same class at IoU ≥ `iouThreshold`, per frame,
 * highest-scored prediction first, each taking the unmatched truth it overlaps most (as in
 * averagePrecision). Unlike AP, no ranking is integrated: every prediction counts as it is, so this
 * measures what a device reports at the threshold the predictions were decoded at.
 */
export function matchAtThreshold(frames: FrameDetections[], iouThreshold = 0.5): ThresholdMatch {
  let truths = 0, predictions = 0, matched = 0;
  for (const f of frames) {
    truths += f.truth.length;
    predictions += f.predicted.length;
    for (const m of matchFrame(f, iouThreshold)) if (m.tp) matched++;
  }
  return { truths, predictions, matched };
}

/**
 * One frame's one-to-one matches: its predictions in score order, each taking the unmatched truth of
 * its class it overlaps most at IoU ≥ `iouThreshold`.
 */
function matchFrame(f: FrameDetections, iouThreshold: number): { pred: Detection; tp: boolean }[] {
  const used = new Array<boolean>(f.truth.length).fill(false);
  return [...f.predicted].sort((a, b) => b.score - a.score).map((p) => {
    let best = -1, bestIou = iouThreshold;
    f.truth.forEach((t, j) => { if (used[j] || t.classId !== p.classId) return; const v = iou(p.box, t.box); if (v >= bestIou) { bestIou = v; best = j; } });
    if (best >= 0) used[best] = true;
    return { pred: p, tp: best >= 0 };
  });
}

/** F1 (0..1) of a threshold match: 1 when both sides found nothing. */
export function f1Score(m: ThresholdMatch): number {
  return m.truths + m.predictions === 0 ? 1 : (2 * m.matched) / (m.truths + m.predictions);
}

/** All-point interpolated AP from a score-ordered true-positive list. */
export function apFromMatches(tp: readonly number[], nTruth: number): number {
  const recall: number[] = [0], precision: number[] = [1];
  let cum = 0;
  tp.forEach((v, i) => { cum += v; recall.push(cum / nTruth); precision.push(cum / (i + 1)); });
  for (let i = precision.length - 2; i >= 0; i--) precision[i] = Math.max(precision[i], precision[i + 1]);
  let ap = 0;
  for (let i = 1; i < recall.length; i++) ap += (recall[i] - recall[i - 1]) * precision[i];
  return ap;
}

/** Mean over the classes that have ground truth. */
export function meanAp(aps: ClassAp[]): number {
  const withTruth = aps.filter((a) => a.truths > 0);
  return withTruth.length === 0 ? 1 : withTruth.reduce((s, a) => s + a.ap, 0) / withTruth.length;
}

/**
 * Everything meanAp(averagePrecision(frames)) needs, matched once: each class's predictions in score
 * order with their frame and whether they matched. A prediction can only match a truth of its own
 * frame, so matching each frame's predictions in its own score order gives averagePrecision's matches.
 * `meanAp(counts)` then scores the frames taken counts[k] times each (a bootstrap draw) without
 * matching again; with every count 1 it is meanAp(averagePrecision(frames)). A frame drawn twice
 * whose class has two predictions of one score is ranked A A B B here and A B A B there, which
 * moves that class's AP a little; no other case differs.
 */
export function weightedMeanAp(frames: FrameDetections[], iouThreshold = 0.5): (counts: ArrayLike<number>) => number {
  const classes = new Map<number, { preds: { frame: number; score: number; tp: number }[]; truths: number[] }>();
  const entry = (classId: number) => {
    let c = classes.get(classId);
    if (!c) classes.set(classId, (c = { preds: [], truths: new Array<number>(frames.length).fill(0) }));
    return c;
  };
  frames.forEach((f, k) => {
    for (const t of f.truth) entry(t.classId).truths[k]++;
    for (const { pred, tp } of matchFrame(f, iouThreshold)) entry(pred.classId).preds.push({ frame: k, score: pred.score, tp: tp ? 1 : 0 });
  });
  for (const c of classes.values()) c.preds.sort((a, b) => b.score - a.score);
  return (counts) => {
    let sum = 0, n = 0;
    for (const c of classes.values()) {
      let nTruth = 0;
      for (let k = 0; k < frames.length; k++) nTruth += counts[k] * c.truths[k];
      if (nTruth === 0) continue;
      const tp: number[] = [];
      for (const p of c.preds) for (let w = counts[p.frame]; w > 0; w--) tp.push(p.tp);
      sum += apFromMatches(tp, nTruth);
      n++;
    }
    return n === 0 ? 1 : sum / n;
  };
}

/**
 * A 95% interval for meanAp(averagePrecision(frames)) by the percentile bootstrap over frames
 * (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13): `resamples` draws of as many
 * frames with replacement, each scored like the whole, the 2.5th and 97.5th percentiles of those
 * scores (0..1). It shows how much the figure depends on which frames were evaluated: a class found on
 * a handful of frames weighs as much as one found on all. Frames of one video are correlated, so the
 * interval is if anything too narrow. Seeded: the same frames give the same interval.
 */
export function bootstrapMeanAp(frames: FrameDetections[], opts: { resamples?: number; seed?: number } = {}): [number, number] {
  if (frames.length === 0) return [1, 1];
  const score = weightedMeanAp(frames);
  return interval95(bootstrapDraws(frames.length, opts).map((counts) => score(counts)));
}

/**
 * A 95% interval for the difference meanAp(b) − meanAp(a) of two candidates evaluated on the same
 * frames against the same reference (a[k] and b[k] are frame k): the paired percentile bootstrap, each
 * draw scoring both on the same frames. Where two builds fail on the same frames their difference
 * varies less than either figure, and builds whose own intervals overlap can still differ for certain;
 * where they fail on different frames it varies as much (the CenterNet's minmax and entropy builds on
 * the bench's 96 vtest frames: −7.9 to +7.4). A difference whose interval holds 0 is not shown by
 * these frames.
 */
export function pairedBootstrapMeanApDifference(a: FrameDetections[], b: FrameDetections[], opts: { resamples?: number; seed?: number } = {}): [number, number] {
  if (a.length !== b.length) throw new RangeError(`Expected two evaluations of the same frames but received ${a.length} and ${b.length} frames`);
  if (a.length === 0) return [0, 0];
  const scoreA = weightedMeanAp(a), scoreB = weightedMeanAp(b);
  return interval95(bootstrapDraws(a.length, opts).map((counts) => scoreB(counts) - scoreA(counts)));
}

/**
 * `resamples` bootstrap draws of n frames with replacement, as counts per frame. Seeded (Park–Miller
 * minimal standard generator: small, good enough to draw frame indices): the same n and seed give the
 * same draws, which is what pairs two evaluations of the same frames.
 */
function bootstrapDraws(n: number, opts: { resamples?: number; seed?: number }): Uint32Array[] {
  const resamples = opts.resamples ?? 400;
  let s = Math.abs(Math.trunc(opts.seed ?? 1)) % 2147483647 || 1;
  const next = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  const draws: Uint32Array[] = [];
  for (let r = 0; r < resamples; r++) {
    const counts = new Uint32Array(n);
    for (let k = 0; k < n; k++) counts[Math.min(n - 1, Math.floor(next() * n))]++;
    draws.push(counts);
  }
  return draws;
}

/** The 2.5th and 97.5th percentiles of `values` (nearest rank on the sorted values, 0-based q·(n − 1)). */
export function interval95(values: readonly number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  return [at(0.025), at(0.975)];
}
