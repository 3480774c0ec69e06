/**
 * Multi-object tracking metrics of a hypothesis against a ground truth, both given as per-frame
 * lists of (id, box).
 *
 * - CLEAR MOT (Bernardin & Stiefelhagen 2008): per frame, correspondences from the previous frame
 *   are kept while their IoU stays above the threshold; the rest are matched by Hungarian assignment
 *   on 1 - IoU. A ground-truth id matched to a different hypothesis id than last time is an ID switch.
 *   MOTA = 1 - (FN + FP + IDSW) / GT.
 * - IDF1 (Ristani et al. 2016): one global one-to-one map between ground-truth and hypothesis ids,
 *   chosen to maximise the frames where the pair overlaps above the threshold; IDF1 = 2 IDTP / (GT + HYP).
 * - Mean IoU on matched tracks: over that same global id map, the IoU of every frame where both
 *   tracks of a pair exist (including poor overlaps, so drift of an interpolated box shows).
 */
import type { Box } from '../types.js';
import { iou } from '../track/iou.js';
import { linearAssignment } from '../track/assignment.js';

export interface MotObject {
  id: number;
  box: Box;
  /** Hypothesis boxes may say whether they were detected or predicted (for per-source IoU). */
  source?: 'detected' | 'predicted';
}

export interface MotFrame {
  frameIndex: number;
  objects: MotObject[];
}

export interface MotMetrics {
  frames: number;
  gtObjects: number;
  hypObjects: number;
  matches: number;
  falsePositives: number;
  misses: number;
  idSwitches: number;
  mota: number;
  idf1: number;
  idtp: number;
  /** Mean IoU over all frames of matched id pairs (global id map). */
  meanIou: number;
  /** Same, restricted to hypothesis boxes that were predicted (interpolated). */
  meanIouPredicted: number | undefined;
  pairFrames: number;
  predictedPairFrames: number;
}

export function motMetrics(gt: readonly MotFrame[], hyp: readonly MotFrame[], opts: { iouThreshold?: number } = {}): MotMetrics {
  const thr = opts.iouThreshold ?? 0.5;
  const hypByFrame = new Map(hyp.map((f) => [f.frameIndex, f.objects]));
  let gtObjects = 0;
  let hypObjects = 0;
  let matches = 0;
  let fp = 0;
  let fn = 0;
  let idsw = 0;
  const lastMatch = new Map<number, number>(); // gt id -> hyp id (last correspondence ever)
  let prevFrame = new Map<number, number>(); // gt id -> hyp id in the previous frame
  // IDF1 bookkeeping: frames where each (gt, hyp) pair overlaps >= thr, and object counts per id.
  const pairHits = new Map<number, Map<number, number>>();
  const frames = new Set<number>([...gt.map((f) => f.frameIndex), ...hyp.map((f) => f.frameIndex)]);

  const gtByFrame = new Map(gt.map((f) => [f.frameIndex, f.objects]));
  for (const fi of [...frames].sort((a, b) => a - b)) {
    const g = gtByFrame.get(fi) ?? [];
    const h = hypByFrame.get(fi) ?? [];
    gtObjects += g.length;
    hypObjects += h.length;
    const ious = g.map((a) => h.map((b) => iou(a.box, b.box)));
    for (let i = 0; i < g.length; i++) {
      for (let j = 0; j < h.length; j++) {
        if (ious[i][j] < thr) continue;
        let m = pairHits.get(g[i].id);
        if (!m) pairHits.set(g[i].id, (m = new Map()));
        m.set(h[j].id, (m.get(h[j].id) ?? 0) + 1);
      }
    }
    // CLEAR MOT: keep last frame's correspondences that still hold.
    const gUsed = new Set<number>();
    const hUsed = new Set<number>();
    const now = new Map<number, number>();
    for (let i = 0; i < g.length; i++) {
      const hid = prevFrame.get(g[i].id);
      if (hid === undefined) continue;
      const j = h.findIndex((o) => o.id === hid);
      if (j >= 0 && !hUsed.has(j) && ious[i][j] >= thr) { gUsed.add(i); hUsed.add(j); now.set(g[i].id, hid); }
    }
    const gi = g.map((_, i) => i).filter((i) => !gUsed.has(i));
    const hj = h.map((_, j) => j).filter((j) => !hUsed.has(j));
    const res = linearAssignment(gi.map((i) => hj.map((j) => 1 - ious[i][j])), 1 - thr, hj.length);
    for (const { row, col } of res.matches) {
      const a = g[gi[row]];
      const b = h[hj[col]];
      const before = lastMatch.get(a.id);
      if (before !== undefined && before !== b.id) idsw++;
      now.set(a.id, b.id);
    }
    for (const [gid, hid] of now) lastMatch.set(gid, hid);
    matches += now.size;
    fn += g.length - now.size;
    fp += h.length - now.size;
    prevFrame = now;
  }

  // IDF1: maximum-weight bipartite map between ids (minimise negative co-occurrence).
  const gtIds = [...new Set(gt.flatMap((f) => f.objects.map((o) => o.id)))];
  const hypIds = [...new Set(hyp.flatMap((f) => f.objects.map((o) => o.id)))];
  const weight = gtIds.map((g) => hypIds.map((h) => pairHits.get(g)?.get(h) ?? 0));
  const maxW = Math.max(1, ...weight.flat());
  const idMap = linearAssignment(weight.map((r) => r.map((w) => (w > 0 ? maxW - w : Infinity))), maxW);
  let idtp = 0;
  const pairs = new Map<number, number>();
  for (const { row, col } of idMap.matches) {
    idtp += weight[row][col];
    pairs.set(gtIds[row], hypIds[col]);
  }
  let iouSum = 0;
  let pairFrames = 0;
  let iouPredSum = 0;
  let predFrames = 0;
  for (const f of gt) {
    const h = hypByFrame.get(f.frameIndex) ?? [];
    for (const a of f.objects) {
      const hid = pairs.get(a.id);
      const b = hid === undefined ? undefined : h.find((o) => o.id === hid);
      if (!b) continue;
      const v = iou(a.box, b.box);
      iouSum += v;
      pairFrames++;
      if (b.source === 'predicted') { iouPredSum += v; predFrames++; }
    }
  }
  return {
    frames: frames.size, gtObjects, hypObjects, matches, falsePositives: fp, misses: fn, idSwitches: idsw,
    mota: gtObjects > 0 ? 1 - (fn + fp + idsw) / gtObjects : 0,
    idf1: gtObjects + hypObjects > 0 ? (2 * idtp) / (gtObjects + hypObjects) : 0,
    idtp,
    meanIou: pairFrames > 0 ? iouSum / pairFrames : 0,
    meanIouPredicted: predFrames > 0 ? iouPredSum / predFrames : undefined,
    pairFrames, predictedPairFrames: predFrames,
  };
}

/**
 * ID switches of a tracker run on its own, without ground truth: a track that ends and, within
 * `gapFrames`, a new id that starts where the old one was predicted to be (IoU >= `minIou` with its
 * last box) counts as one switch — the same object got a new id. Used to compare the every-frame run
 * with the interval run when no annotation exists.
 */
export function selfIdSwitches(frames: readonly MotFrame[], opts: { gapFrames?: number; minIou?: number } = {}): number {
  const gap = opts.gapFrames ?? 30;
  const minIou = opts.minIou ?? 0.3;
  const last = new Map<number, { frameIndex: number; box: Box }>();
  const seen = new Set<number>();
  let switches = 0;
  for (const f of frames) {
    const present = new Set(f.objects.map((o) => o.id));
    for (const o of f.objects) {
      if (!seen.has(o.id)) {
        seen.add(o.id);
        for (const [id, l] of last) {
          if (present.has(id) || f.frameIndex - l.frameIndex > gap) continue;
          if (iou(l.box, o.box) >= minIou) { switches++; last.delete(id); break; }
        }
      }
      last.set(o.id, { frameIndex: f.frameIndex, box: o.box });
    }
    for (const [id, l] of last) if (f.frameIndex - l.frameIndex > gap) last.delete(id);
  }
  return switches;
}
