import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTracker } from '../../agent/src/track/tracker.js';
import type { Detection } from '../../agent/src/types.js';

const person = (x: number, y: number, score = 0.9): Detection => ({ classId: 0, label: 'person', score, box: { x, y, w: 40, h: 100 } });

test('two people crossing paths keep their ids', () => {
  const tr = new ByteTracker();
  const idsAt = new Map<number, number[]>();
  for (let f = 0; f <= 60; f++) {
    // A walks right, B walks left, same row; they overlap around f = 30.
    const a = person(100 + 5 * f, 200);
    const b = person(400 - 5 * f, 205);
    const out = tr.update(f, [a, b]);
    idsAt.set(f, out.sort((p, q) => p.box.x - q.box.x).map((o) => o.trackId));
  }
  const start = idsAt.get(5)!;
  const end = idsAt.get(55)!;
  assert.equal(start.length, 2);
  // Left-most at the start is A; at the end A is right-most.
  assert.deepEqual(end, [start[1], start[0]]);
});

test('an occluded track is predicted through a gap and keeps its id afterwards', () => {
  const tr = new ByteTracker({ lostBufferFrames: 30 });
  let id: number | undefined;
  for (let f = 0; f < 20; f++) id = tr.update(f, [person(100 + 4 * f, 100)])[0]?.trackId ?? id;
  // 12 frames of occlusion: detector sees nothing.
  for (let f = 20; f < 32; f++) tr.update(f, []);
  const back = tr.update(32, [person(100 + 4 * 32, 100)]);
  assert.equal(back.length, 1);
  assert.equal(back[0].trackId, id);
  assert.equal(back[0].source, 'detected');
});

test('low-score detections keep an existing track alive (second association)', () => {
  const tr = new ByteTracker();
  for (let f = 0; f < 5; f++) tr.update(f, [person(100 + 2 * f, 100, 0.9)]);
  const out = tr.update(5, [person(110, 100, 0.3)]);
  assert.equal(out.length, 1);
  assert.equal(out[0].source, 'detected');
  // A low-score detection alone never starts a track.
  const fresh = new ByteTracker();
  for (let f = 0; f < 5; f++) assert.equal(fresh.update(f, [person(100, 100, 0.3)]).length, 0);
});

test('frames without detection carry predicted boxes that follow the motion', () => {
  const tr = new ByteTracker();
  for (let f = 0; f <= 30; f += 3) {
    const out = tr.update(f, [person(4 * f, 50)]);
    assert.equal(out[0].source, 'detected');
    if (f === 30) break;
    for (const g of [f + 1, f + 2]) {
      const p = tr.update(g, null);
      assert.equal(p.length, 1);
      assert.equal(p[0].source, 'predicted');
      if (f >= 9) assert.ok(Math.abs(p[0].box.x - 4 * g) < 3, `frame ${g}: x ${p[0].box.x} vs ${4 * g}`);
    }
  }
});

test('per-class matching: a car at the same place does not take a person\'s id', () => {
  const tr = new ByteTracker();
  for (let f = 0; f < 3; f++) tr.update(f, [person(100, 100)]);
  const pid = tr.update(3, [person(100, 100)])[0].trackId;
  const car: Detection = { classId: 2, label: 'car', score: 0.95, box: { x: 100, y: 100, w: 40, h: 100 } };
  tr.update(4, [car]);
  const out = tr.update(5, [car]);
  assert.equal(out.length, 1);
  assert.notEqual(out[0].trackId, pid);
  assert.equal(out[0].label, 'car');
});

test('a track lost past its buffer is removed and a new id is given', () => {
  const tr = new ByteTracker({ lostBufferFrames: 5, maxPredictFrames: 2 });
  const first = tr.update(0, [person(100, 100)])[0].trackId;
  for (let f = 1; f < 10; f++) tr.update(f, []);
  assert.equal(tr.stats().lostTracks, 0);
  tr.update(10, [person(100, 100)]);
  const again = tr.update(11, [person(100, 100)]);
  assert.notEqual(again[0].trackId, first);
});

test('hold keeps boxes still and alive through a static stretch longer than maxPredictFrames', () => {
  const tr = new ByteTracker({ maxPredictFrames: 5 });
  for (let f = 0; f < 6; f++) tr.update(f, [person(100, 100)]);
  let out = tr.update(6, null);
  for (let f = 7; f < 40; f++) out = tr.hold(f);
  assert.equal(out.length, 1);
  assert.equal(out[0].source, 'predicted');
  assert.ok(Math.abs(out[0].box.x - 100) < 1);
  const back = tr.update(40, [person(101, 100)]);
  assert.equal(back[0].trackId, out[0].trackId);
});

test('class-agnostic matching: a track takes the class most of its recent detections give, not its first one', () => {
  // The first detection says "car", every later one "person": a zone rule for people never fired.
  const tr = new ByteTracker({ perClass: false });
  const car = (x: number, score: number): Detection => ({ classId: 2, label: 'car', score, box: { x, y: 100, w: 40, h: 100 } });
  let out = tr.update(0, [car(100, 0.6)]);
  const id = out[0].trackId;
  for (let f = 1; f <= 20; f++) out = tr.update(f, [person(100 + 5 * f, 100)]);
  assert.deepEqual(out.map((o) => [o.trackId, o.label, o.classId]), [[id, 'person', 0]]);
  // One confident mislabel among many agreeing detections does not flip it.
  out = tr.update(21, [car(205, 0.95)]);
  assert.deepEqual(out.map((o) => [o.trackId, o.label, o.classId]), [[id, 'person', 0]]);
  out = tr.update(22, [person(210, 100)]);
  assert.deepEqual(out.map((o) => [o.trackId, o.label]), [[id, 'person']]);
});
