import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrackingStage } from '../../agent/src/schedule/tracking-stage.js';
import type { Detection, Frame } from '../../agent/src/types.js';

const W = 160;
const H = 120;

/** A grey frame with a bright 12x30 "person" whose left edge is at x (or none). */
function frame(index: number, x: number | undefined): Frame {
  const data = new Uint8Array(W * H * 3).fill(80);
  if (x !== undefined) for (let y = 40; y < 70; y++) for (let c = x; c < x + 12; c++) data.fill(220, (y * W + c) * 3, (y * W + c) * 3 + 3);
  return { width: W, height: H, data, index, ptsNs: index * 1e8, capturedAtNs: 0, sourceId: 'synthetic' };
}

/** A fake detector that finds the bright blob (stands in for a model; the stage only sees a function). */
function blobDetector(calls: number[]) {
  return async (f: Frame): Promise<Detection[]> => {
    calls.push(f.index);
    let minX = Infinity;
    for (let c = 0; c < W; c++) if (f.data[(50 * W + c) * 3] > 150) { minX = c; break; }
    return Number.isFinite(minX) ? [{ classId: 0, label: 'person', score: 0.9, box: { x: minX, y: 40, w: 12, h: 30 } }] : [];
  };
}

test('still scene: the motion gate skips the detector; movement brings it back and tracks fill the gaps', async () => {
  const calls: number[] = [];
  const stage = new TrackingStage({ detect: blobDetector(calls), schedule: { mode: 'fixed', interval: 2, maxIdleFrames: 100 } });
  const results = [];
  for (let i = 0; i < 10; i++) results.push(await stage.process(frame(i, undefined)));
  for (let i = 10; i < 30; i++) results.push(await stage.process(frame(i, 20 + 2 * (i - 10))));
  assert.deepEqual(calls.filter((c) => c < 10), [0], 'only the first still frame is detected');
  assert.ok(calls.filter((c) => c >= 10).length >= 9, `detector ran on motion: ${calls}`);
  const withBoxes = results.slice(12);
  assert.ok(withBoxes.every((r) => r.tracks.length === 1), 'every moving frame carries a box');
  assert.ok(withBoxes.some((r) => r.tracks[0].source === 'predicted'));
  assert.ok(withBoxes.some((r) => r.tracks[0].source === 'detected'));
  assert.equal(new Set(withBoxes.map((r) => r.tracks[0].trackId)).size, 1, 'one stable id');
});

test('adaptive schedule: a slow detector widens the interval', async () => {
  let now = 0;
  const calls: number[] = [];
  const det = blobDetector(calls);
  const stage = new TrackingStage({
    detect: async (f) => { now += 100; return det(f); },
    nowMs: () => now,
    schedule: { mode: 'adaptive', latencyBudgetMs: 25, maxInterval: 8, latencyEwmaAlpha: 1, motion: { enabled: false } },
  });
  for (let i = 0; i < 20; i++) await stage.process(frame(i, 20 + i));
  assert.equal(stage.scheduler.interval(), 4);
  assert.deepEqual(calls, [0, 4, 8, 12, 16]);
});

test('a person standing still keeps a box while the motion gate rests the detector', async () => {
  const calls: number[] = [];
  const stage = new TrackingStage({ detect: blobDetector(calls), schedule: { mode: 'fixed', interval: 1, maxIdleFrames: 100 }, tracker: { maxPredictFrames: 5 } });
  let last;
  for (let i = 0; i < 60; i++) last = await stage.process(frame(i, 50));
  assert.deepEqual(calls, [0], 'only the first frame is detected');
  assert.equal(last!.tracks.length, 1);
  assert.equal(last!.decision.reason, 'skip-no-motion');
});

test('a person who leaves on a frame the interval skips is dropped at the next interval, not held as a ghost', async () => {
  // Default schedule (k = 3, motion gate on). The person walks on frames 0..10 and is gone from 11:
  // the movement of 10 and 11 falls between detections, the scene is still from 12 on.
  const calls: number[] = [];
  const stage = new TrackingStage({ detect: blobDetector(calls) });
  let lastWithTrack = -1;
  for (let i = 0; i < 60; i++) {
    const r = await stage.process(frame(i, i <= 10 ? 20 + 2 * i : undefined));
    if (r.tracks.length > 0) lastWithTrack = i;
  }
  assert.ok(lastWithTrack <= 12, `track reported until frame ${lastWithTrack}; detector ran on ${calls}`);
});

test('a person who walks in for a few frames and stands still gets a box within a few frames', async () => {
  for (const stopAt of [10, 11, 12, 13]) {
    const calls: number[] = [];
    const stage = new TrackingStage({ detect: blobDetector(calls) });
    let firstBox = -1;
    for (let i = 0; i < 60 && firstBox < 0; i++) {
      const r = await stage.process(frame(i, i < 10 ? undefined : 20 + 3 * (Math.min(i, stopAt) - 10)));
      if (r.tracks.length > 0) firstBox = i;
    }
    assert.ok(firstBox >= 10 && firstBox <= 16, `walked frames 10..${stopAt}: first box at frame ${firstBox}; detector ran on ${calls}`);
  }
});

// Interval 20 with the default maxPredictFrames (15): every box vanished for 4 frames before each
// detection, and came back as a new occupancy each time. The prediction now covers the interval.
test('a detection interval longer than tracker.maxPredictFrames keeps every box between detections', async () => {
  const calls: number[] = [];
  const stage = new TrackingStage({ detect: blobDetector(calls), schedule: { mode: 'fixed', interval: 20, motion: { enabled: false } } });
  const counts: number[] = [];
  for (let i = 0; i < 60; i++) counts.push((await stage.process(frame(i, 20 + (i >> 2)))).tracks.length);
  assert.deepEqual(calls, [0, 20, 40], 'detector every 20 frames');
  assert.deepEqual(counts.slice(20).map((n, k) => [20 + k, n]).filter(([, n]) => n !== 1), [], 'one box on every frame once the track is confirmed (frame 20)');
});
