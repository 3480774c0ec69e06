/**
 * The shape gate on re-identifying lost tracks (tracker-reid-shape.test.ts) holds for people, whose
 * box keeps its aspect, but not for vehicles: a car that turns while hidden comes back with another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTracker } from '../../agent/src/track/tracker.js';
import type { Box, Detection } from '../../agent/src/types.js';

const of = (classId: number, label: string) => (box: Box, score = 0.9): Detection => ({ classId, label, score, box });
const car = of(2, 'car');
const person = of(0, 'person');

/** A box 200x80 (a car side-on) driving right 10 px a frame, detected in frames 0-9, hidden in 10-17. */
function driveThenHide(tr: ByteTracker, make: (box: Box) => Detection): number {
  let id: number | undefined;
  for (let f = 0; f < 10; f++) id = tr.update(f, [make({ x: 100 + 10 * f, y: 300, w: 200, h: 80 })])[0]?.trackId ?? id;
  for (let f = 10; f < 18; f++) tr.update(f, []);
  assert.equal(tr.stats().lostTracks, 1);
  return id!;
}

test('a car that turns while hidden (side-on 2.5:1, then from behind 1.1:1) keeps its track id', () => {
  const tr = new ByteTracker();
  const id = driveThenHide(tr, (b) => car(b));
  // Seen again from behind where it turned, inside its predicted box.
  const found = tr.update(18, [car({ x: 300, y: 295, w: 100, h: 90 })]);
  assert.deepEqual(found.map((o) => [o.trackId, o.source]), [[id, 'detected']], 'a new id means a second zone enter and a restarted dwell');
  assert.deepEqual(tr.update(19, [car({ x: 302, y: 296, w: 100, h: 90 })]).map((o) => o.trackId), [id]);
  assert.equal(tr.stats().tracksStarted, 1);
});

test('a lost person is still not re-identified with a box of that other shape', () => {
  const tr = new ByteTracker();
  const id = driveThenHide(tr, (b) => person(b));
  const out = tr.update(18, [person({ x: 300, y: 295, w: 100, h: 90 })]);
  assert.deepEqual(out.filter((o) => o.trackId === id), []);
});
