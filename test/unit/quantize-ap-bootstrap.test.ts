/**
 * The interval evaluate reports around agreement mAP (ap.ts bootstrapMeanAp): each draw is scored by
 * weightedMeanAp, which must score a multiset of frames as averagePrecision does, and the
 * interval must be reproducible and say how much the figure depends on the frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { averagePrecision, bootstrapMeanAp, interval95, meanAp, pairedBootstrapMeanApDifference, weightedMeanAp, type FrameDetections } from '../../fleet-server/src/quantize/ap.js';
import type { Detection } from '../../agent/src/types.js';

function randomFrames(n: number, seed: number): FrameDetections[] {
  let s = seed;
  const r = (): number => ((s = (s * 16807) % 2147483647) / 2147483647);
  const box = (x: number, y: number) => ({ x, y, w: 20 + r() * 40, h: 20 + r() * 40 });
  return Array.from({ length: n }, () => {
    // A few classes, some rare; candidates near (or not near) each truth, doubles, and strays on top.
    const truth: Detection[] = Array.from({ length: 1 + Math.floor(r() * 8) }, () => {
      const classId = r() < 0.8 ? 0 : 1 + Math.floor(r() * 4);
      return { classId, label: `c${classId}`, score: 1, box: box(r() * 300, r() * 300) };
    });
    const predicted: Detection[] = [];
    for (const t of truth) {
      if (r() < 0.85) predicted.push({ ...t, score: Math.round(r() * 1000) / 1000 + 0.001, box: { ...t.box, x: t.box.x + (r() - 0.5) * 30 } });
      if (r() < 0.2) predicted.push({ ...t, score: r() / 2, box: { ...t.box, y: t.box.y + 5 } });
    }
    for (let k = Math.floor(r() * 3); k > 0; k--) {
      const classId = Math.floor(r() * 5);
      predicted.push({ classId, label: `c${classId}`, score: r() / 3, box: box(r() * 300, r() * 300) });
    }
    return { truth, predicted };
  });
}

test('a draw of frames scores as averagePrecision scores those frames, repeated ones included', () => {
  const frames = randomFrames(40, 11);
  const score = weightedMeanAp(frames);
  assert.equal(score(new Array<number>(40).fill(1)), meanAp(averagePrecision(frames)));
  const counts = frames.map((_f, k) => (k * 7) % 4); // 0–3 copies of each
  const drawn = frames.flatMap((f, k) => new Array<FrameDetections>(counts[k]).fill(f));
  assert.ok(Math.abs(score(counts) - meanAp(averagePrecision(drawn))) < 1e-12, `${score(counts)} vs ${meanAp(averagePrecision(drawn))}`);
  // A class with no truth in the draw is left out of the mean, as meanAp leaves it out.
  const only0 = frames.map((f) => (f.truth.every((t) => t.classId === 0) ? 1 : 0));
  const kept = frames.filter((_f, k) => only0[k] === 1);
  assert.ok(Math.abs(score(only0) - meanAp(averagePrecision(kept))) < 1e-12);
});

test('the interval holds the point figure, repeats for the same frames, and closes when every frame is alike', () => {
  const frames = randomFrames(60, 5);
  const point = meanAp(averagePrecision(frames));
  const [lo, hi] = bootstrapMeanAp(frames);
  assert.ok(lo <= point && point <= hi, `${lo} ≤ ${point} ≤ ${hi}`);
  assert.ok(hi - lo > 0.01, `a spread of ${hi - lo} over 60 varied frames`);
  assert.deepEqual(bootstrapMeanAp(frames), [lo, hi]);
  const same = new Array<FrameDetections>(30).fill(frames[0]);
  const [a, b] = bootstrapMeanAp(same);
  assert.equal(a, b);
  assert.ok(Math.abs(a - meanAp(averagePrecision(same))) < 1e-12);
});

test('the interval is the 2.5th and 97.5th percentiles of the draws; any seed draws', () => {
  // 400 draws scoring 0..399 in any order: the 11th and the 390th (0-based 10 and 389).
  const values = Array.from({ length: 400 }, (_v, i) => (i * 263) % 400);
  assert.deepEqual(interval95(values), [10, 389]);
  assert.deepEqual(interval95([5]), [5, 5]);
  const frames = randomFrames(30, 3);
  for (const seed of [-7, 0, 2 ** 40, 1.5]) {
    const [lo, hi] = bootstrapMeanAp(frames, { seed, resamples: 50 });
    assert.ok(lo < hi && lo > 0 && hi < 1, `seed ${seed}: ${lo}–${hi}`);
  }
});

test('the paired interval of a difference: 0 for the same build, and certain where both builds miss the same hard frames and one misses a few more', () => {
  const frames = randomFrames(50, 3);
  assert.deepEqual(pairedBootstrapMeanApDifference(frames, frames), [0, 0]);
  // One person a frame. Both builds miss it on the 10 hard frames (a box elsewhere); B also on 5 more.
  const truthAt = (k: number): Detection => ({ classId: 0, label: 'c0', score: 1, box: { x: 10 * k, y: 10, w: 40, h: 80 } });
  const build = (misses: (k: number) => boolean): FrameDetections[] => Array.from({ length: 40 }, (_v, k) => {
    const t = truthAt(k);
    const score = 0.5 + k / 100;
    return { truth: [t], predicted: [{ ...t, score, box: misses(k) ? { ...t.box, y: 300 } : t.box }] };
  });
  const a = build((k) => k >= 30), b = build((k) => k >= 30 || k < 5);
  const [aLo, aHi] = bootstrapMeanAp(a), [bLo, bHi] = bootstrapMeanAp(b);
  assert.ok(bHi > aLo && aHi > bLo, `each build's own interval overlaps the other's: A ${aLo}–${aHi}, B ${bLo}–${bHi}`);
  const [lo, hi] = pairedBootstrapMeanApDifference(a, b);
  const point = meanAp(averagePrecision(b)) - meanAp(averagePrecision(a));
  assert.ok(lo <= point && point <= hi, `${point} in ${lo}–${hi}`);
  assert.ok(hi < 0, `B is worse on these frames for certain: ${lo}–${hi}`);
  assert.ok(hi - lo < Math.min(aHi - aLo, bHi - bLo), 'the difference varies less than either figure');
  assert.throws(() => pairedBootstrapMeanApDifference(a, b.slice(1)), /the same frames but received 40 and 39/);
});
