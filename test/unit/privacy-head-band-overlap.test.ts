/**
 * Two people standing close: their boxes, and so their head bands (the whole box width), overlap.
 * A face the face model found stands for one person only; it used to excuse every band holding its
 * centre, so person B's face let person A's turned-away head (the case the band is for) out unhidden.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headBands } from '../../agent/src/privacy/persons.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Box, Detection } from '../../agent/src/types.js';

const spec = parsePrivacyConfig({}).faces.headBand;
const person = (box: Box): Detection => ({ classId: 0, label: 'person', score: 0.9, box });
const face = (cx: number, cy: number, w = 40, h = 50) => ({ kind: 'face' as const, source: 'face-model' as const, score: 0.8, box: { x: cx - w / 2, y: cy - h / 2, w, h } });
const covers = (b: Box, x0: number, y0: number, x1: number, y1: number) => b.x <= x0 && b.y <= y0 && b.x + b.w >= x1 && b.y + b.h >= y1;

// 1080p: A's head turned away (no face found), B next to it, its face found at (1000, 370).
const A = person({ x: 800, y: 300, w: 200, h: 500 });
const B = person({ x: 900, y: 320, w: 200, h: 500 });

test("a face found for one of two overlapping persons does not excuse the other's head band", () => {
  const bands = headBands([A, B], [face(1000, 370)], spec);
  assert.equal(bands.length, 1, `bands: ${JSON.stringify(bands.map((b) => b.box))}`);
  // A's head, about x 880-940, y 310-380, is in the band hidden.
  assert.ok(covers(bands[0].box, 880, 310, 940, 380), `A's head is not in ${JSON.stringify(bands[0].box)}`);
  // The order of the detections does not change who the face belongs to.
  assert.deepEqual(headBands([B, A], [face(1000, 370)], spec).map((b) => b.box), bands.map((b) => b.box));
});

test('both faces found: neither overlapping person gets a band, even when both faces sit in both bands', () => {
  assert.deepEqual(headBands([A, B], [face(1000, 370), face(910, 350)], spec), []);
  // Faces in the overlap (x 900-1000) of both bands: each person takes one.
  assert.deepEqual(headBands([A, B], [face(930, 360), face(980, 380)], spec), []);
});

test('one face in the overlap of two bands stands for the person whose band centre is nearest; the other gets its band', () => {
  const bands = headBands([A, B], [face(920, 370)], spec);
  assert.equal(bands.length, 1);
  assert.equal(bands[0].box.x, 900, 'B (band centre x 1000) should be hidden, A (band centre x 900) has the face');
});

test('far apart persons are judged each by the faces in its own band, as before', () => {
  const C = person({ x: 100, y: 300, w: 200, h: 500 });
  const D = person({ x: 1400, y: 300, w: 200, h: 500 });
  assert.deepEqual(headBands([C, D], [face(200, 360), face(1500, 360)], spec), []);
  assert.deepEqual(headBands([C, D], [face(200, 360)], spec).map((b) => b.box.x), [1400]);
});
