/**
 * Re-identification of lost tracks keeps to the track's shape. On vtest.avi the prediction of a
 * person lost behind the lamp post ran on for 27 frames onto a stone on the grass that the detector
 * reports as a "person" (30x27 against the person's 37x81) and took it over for the rest of the clip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTracker } from '../../agent/src/track/tracker.js';
import type { Box, Detection } from '../../agent/src/types.js';

const det = (box: Box, score = 0.9): Detection => ({ classId: 0, label: 'person', score, box });

/** A person 40x100 walking left 6 px a frame, detected every frame up to `lastSeen`, then nothing until `gapEnd`. */
function walkThenLose(tr: ByteTracker, lastSeen: number, gapEnd: number): number {
  let id: number | undefined;
  for (let f = 0; f <= lastSeen; f++) id = tr.update(f, [det({ x: 400 - 6 * f, y: 100, w: 40, h: 100 })])[0]?.trackId ?? id;
  for (let f = lastSeen + 1; f < gapEnd; f++) tr.update(f, []);
  assert.equal(tr.stats().lostTracks, 1);
  return id!;
}

test('a lost track is not re-identified with a detection of another shape where its prediction has run to', () => {
  const tr = new ByteTracker();
  const id = walkThenLose(tr, 20, 45);
  // At frame 45 the person is predicted at x = 130..170, y = 100..200. A stone lies in the lower half
  // of that box: wide and low, boxed as a weak "person" in every frame from now on.
  const stone = det({ x: 132, y: 160, w: 36, h: 32 }, 0.45);
  for (let f = 45; f <= 55; f++) {
    const out = tr.update(f, [stone]);
    assert.deepEqual(out.filter((o) => o.trackId === id), [], `frame ${f}: the stone took the lost person's track`);
  }

  // The same place with a box of the person's shape is the person coming back.
  const again = new ByteTracker();
  const id2 = walkThenLose(again, 20, 45);
  const out = again.update(45, [det({ x: 128, y: 102, w: 38, h: 96 }, 0.45)]);
  assert.deepEqual(out.map((o) => [o.trackId, o.source]), [[id2, 'detected']]);
});

test('a lost track whose last box was partial (half behind a sign) is re-identified when it comes back whole', () => {
  const tr = new ByteTracker();
  let id: number | undefined;
  for (let f = 0; f <= 15; f++) id = tr.update(f, [det({ x: 300 - 2 * f, y: 100, w: 40, h: 100 })])[0]?.trackId ?? id;
  // Only the upper body is boxed, then nothing for 8 frames.
  tr.update(16, [det({ x: 268, y: 100, w: 40, h: 42 })]);
  for (let f = 17; f < 25; f++) tr.update(f, []);
  const out = tr.update(25, [det({ x: 250, y: 100, w: 40, h: 100 })]);
  assert.deepEqual(out.map((o) => [o.trackId, o.source]), [[id, 'detected']]);
});

test('a track found by the previous detector run takes a box of another shape (a person half hidden)', () => {
  const tr = new ByteTracker();
  let id: number | undefined;
  for (let f = 0; f <= 10; f++) id = tr.update(f, [det({ x: 100 + 2 * f, y: 100, w: 40, h: 100 })])[0]?.trackId ?? id;
  // Behind a parked car: head and shoulders only, at the top of where the person stands.
  const out = tr.update(11, [det({ x: 122, y: 100, w: 40, h: 38 })]);
  assert.deepEqual(out.map((o) => [o.trackId, o.source]), [[id, 'detected']]);
});
