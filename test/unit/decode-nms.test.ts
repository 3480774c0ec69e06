import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iou, nms } from '../../agent/src/decode/nms.js';

test('iou of identical, disjoint and half-overlapping boxes', () => {
  const a = { x: 0, y: 0, w: 10, h: 10 };
  assert.equal(iou(a, a), 1);
  assert.equal(iou(a, { x: 20, y: 0, w: 10, h: 10 }), 0);
  // Overlap 5x10 = 50, union 150.
  assert.ok(Math.abs(iou(a, { x: 5, y: 0, w: 10, h: 10 }) - 1 / 3) < 1e-12);
});

test('nms keeps the best of an overlapping pair and every disjoint box', () => {
  const kept = nms([
    { classId: 0, score: 0.6, box: { x: 1, y: 1, w: 10, h: 10 } },
    { classId: 0, score: 0.9, box: { x: 0, y: 0, w: 10, h: 10 } },
    { classId: 0, score: 0.7, box: { x: 100, y: 100, w: 10, h: 10 } },
  ], { iouThreshold: 0.5, maxDetections: 10 });
  assert.deepEqual(kept.map((k) => k.score), [0.9, 0.7]);
});

test('class-aware nms keeps overlapping boxes of different classes; class-agnostic does not', () => {
  const cands = [
    { classId: 0, score: 0.9, box: { x: 0, y: 0, w: 10, h: 10 } },
    { classId: 1, score: 0.8, box: { x: 0, y: 0, w: 10, h: 10 } },
  ];
  assert.equal(nms(cands, { iouThreshold: 0.5, maxDetections: 10 }).length, 2);
  assert.equal(nms(cands, { iouThreshold: 0.5, maxDetections: 10, classAgnostic: true }).length, 1);
});

test('a box suppressed by a better one cannot suppress a third (greedy order)', () => {
  // B overlaps A and C; A and C do not overlap. A kills B, so C survives.
  const kept = nms([
    { classId: 0, score: 0.9, box: { x: 0, y: 0, w: 10, h: 10 } },
    { classId: 0, score: 0.8, box: { x: 3, y: 0, w: 10, h: 10 } },
    { classId: 0, score: 0.7, box: { x: 8, y: 0, w: 10, h: 10 } },
  ], { iouThreshold: 0.4, maxDetections: 10 });
  assert.deepEqual(kept.map((k) => k.box.x), [0, 8]);
});

test('maxDetections caps the output and weighted nms averages the cluster by score', () => {
  const many = Array.from({ length: 20 }, (_, i) => ({ classId: 0, score: i / 20, box: { x: i * 20, y: 0, w: 10, h: 10 } }));
  assert.equal(nms(many, { iouThreshold: 0.5, maxDetections: 5 }).length, 5);
  const [merged] = nms([
    { classId: 0, score: 0.75, box: { x: 0, y: 0, w: 10, h: 10 }, keypoints: [{ x: 0, y: 0 }] },
    { classId: 0, score: 0.25, box: { x: 2, y: 0, w: 10, h: 10 }, keypoints: [{ x: 4, y: 0 }] },
  ], { iouThreshold: 0.3, maxDetections: 5, weighted: true });
  assert.equal(merged.score, 0.75);
  assert.ok(Math.abs(merged.box.x - 0.5) < 1e-12);
  assert.ok(Math.abs(merged.keypoints![0].x - 1) < 1e-12);
});
