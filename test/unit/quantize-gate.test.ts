/** The accuracy gate's decision: a drop over the limit fails, and so does having nothing to compare. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideGate } from '../../fleet-server/src/quantize/gate.js';

const atThreshold = { scoreThreshold: 0.3, referenceDetections: 40, candidateDetections: 40, matched: 39, recall: 97.5, precision: 97.5, f1: 97.5, f1Drop: 2.5 };
const ok = { frames: 24, referenceDetections: 40, mapDrop: 0.4, atThreshold };

test('a drop within the limit passes, one over it fails and offers FP16/FP32', () => {
  assert.equal(decideGate(ok).pass, true);
  const d = decideGate({ ...ok, mapDrop: 1.2 });
  assert.equal(d.pass, false);
  assert.deepEqual(d.offer, ['fp16', 'fp32']);
  assert.equal(decideGate({ ...ok, mapDrop: 1.2 }, { maxMapDrop: 2 }).pass, true);
});

test('nothing to compare cannot pass: no frames, no reference detections, labels with no box on the frames', () => {
  const none = decideGate({ ...ok, frames: 0, referenceDetections: 0, mapDrop: 0 });
  assert.equal(none.pass, false);
  assert.match(none.reason, /no evaluation frames: cannot judge/);
  // Agreement with a reference that found nothing is a vacuous 100.
  const blank = decideGate({ ...ok, referenceDetections: 0, mapDrop: 0 });
  assert.equal(blank.pass, false);
  assert.match(blank.reason, /reference model detects nothing on the 24 evaluated frames/);
  const labels = decideGate({ ...ok, mapDrop: 0, labels: { referenceMap: 100, candidateMap: 100, drop: 0, boxes: 0 } });
  assert.equal(labels.pass, false);
  assert.match(labels.reason, /labels have no box/);
  // With labelled boxes the labels decide, whatever the reference found.
  assert.equal(decideGate({ ...ok, referenceDetections: 0, mapDrop: 0.2, labels: { referenceMap: 80, candidateMap: 79.8, drop: 0.2, boxes: 12 } }).pass, true);
});

test('a candidate that keeps the ranking (mAP) but loses detections at the score threshold fails on F1', () => {
  // Scores ×0.8: every box keeps its rank, so mAP sees no drop, but 10 of 40 fall under the threshold.
  const slump = { ...atThreshold, candidateDetections: 30, matched: 30, recall: 75, precision: 100, f1: 85.71, f1Drop: 14.29 };
  const d = decideGate({ ...ok, mapDrop: 0, atThreshold: slump });
  assert.equal(d.pass, false);
  assert.equal(d.f1Drop, 14.29);
  assert.match(d.reason, /^F1 drop at score ≥ 0\.3 14\.29 > 3 points \(the candidate reports 30 detections where the reference reports 40, 30 of them alike\) over 24 frames; publish the FP32 artifact instead \(or the FP16 one once it passes this gate: model publish --precision fp16 with --reference and --data\)/);
  assert.deepEqual(d.offer, ['fp16', 'fp32']);
  assert.equal(decideGate({ ...ok, mapDrop: 0, atThreshold: slump }, { maxF1Drop: 15 }).pass, true);
  // Both limits are reported when both are exceeded; a pass names both figures.
  assert.match(decideGate({ ...ok, mapDrop: 2, atThreshold: slump }).reason, /^mAP@0\.5 drop 2\.00 > 1 points and F1 drop at score ≥ 0\.3 14\.29 > 3 points/);
  assert.match(decideGate(ok).reason, /^mAP@0\.5 drop 0\.40 ≤ 1 points and F1 drop at score ≥ 0\.3 2\.50 ≤ 3 points over 24 frames$/);
});
