/** The accuracy gate's decision: a drop over the limit fails, and so does having nothing to compare. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideGate } from '../../fleet-server/src/quantize/gate.js';

const ok = { frames: 24, referenceDetections: 40, mapDrop: 0.4 };

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
