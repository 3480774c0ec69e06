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
    const used = new Array<boolean>(f.truth.length).fill(false);
    for (const p of [...f.predicted].sort((a, b) => b.score - a.score)) {
      let best = -1, bestIou = iouThreshold;
      f.truth.forEach((t, j) => { if (used[j] || t.classId !== p.classId) return; const v = iou(p.box, t.box); if (v >= bestIou) { bestIou = v; best = j; } });
      if (best >= 0) { used[best] = true; matched++; }
    }
  }
  return { truths, predictions, matched };
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
