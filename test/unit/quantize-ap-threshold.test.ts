/** Agreement at the operating threshold: one-to-one matches of a candidate's detections to the reference's, and their F1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f1Score, matchAtThreshold } from '../../fleet-server/src/quantize/ap.js';
import type { Detection } from '../../agent/src/types.js';

const det = (x: number, score: number, classId = 0): Detection => ({ classId, label: `c${classId}`, score, box: { x, y: 0, w: 10, h: 10 } });

test('each reference detection is matched at most once, by class and IoU ≥ 0.5', () => {
  const m = matchAtThreshold([
    // Two candidates on one reference box: one match, one extra.
    { truth: [det(0, 0.9)], predicted: [det(1, 0.8), det(0, 0.7)] },
    // Same place, other class: no match. Shifted by 6 px (IoU 0.25): no match.
    { truth: [det(0, 0.9), det(50, 0.9)], predicted: [det(0, 0.9, 1), det(56, 0.9)] },
    // Nothing found where the reference found one.
    { truth: [det(0, 0.5)], predicted: [] },
  ]);
  assert.deepEqual(m, { truths: 4, predictions: 4, matched: 1 });
  assert.equal(f1Score(m), 2 / 8);
});

test('F1 is 1 for identical detections and for two empty sides, and falls with every detection lost at the threshold', () => {
  const frames = [{ truth: [det(0, 0.9), det(20, 0.4)], predicted: [det(0, 0.85), det(20, 0.35)] }];
  assert.equal(f1Score(matchAtThreshold(frames)), 1);
  assert.equal(f1Score(matchAtThreshold([{ truth: [], predicted: [] }])), 1);
  // The second box's score sank under the threshold, so the candidate decoded at it no longer reports it.
  assert.equal(f1Score(matchAtThreshold([{ truth: frames[0].truth, predicted: [det(0, 0.85)] }])), 2 / 3);
});
