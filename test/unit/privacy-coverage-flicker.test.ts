/**
 * Detector flicker: a face found in one frame and missed in the next must still be hidden in the
 * next. The coverage used the nearest observation's regions only, so the second frame went out
 * with the face in it, as covered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyCoverage, type PrivacyRegion } from '../../agent/src/privacy/coverage.js';
import { padRegion } from '../../agent/src/privacy/redactor.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';

const MS = 1e6;
const face = (x: number) => ({ kind: 'face' as const, source: 'face-model' as const, score: 0.9, box: { x, y: 100, w: 50, h: 50 } });
const { paddingFrac } = parsePrivacyConfig({}).redaction;
/** The face box lies inside what the redactor hides for one of the regions (padded as configured). */
const hidden = (regions: PrivacyRegion[], f: { x: number; y: number; w: number; h: number }) => regions.some((q) => {
  const r = padRegion(q.box, q.paddingFrac ?? paddingFrac, 10_000, 10_000);
  return r !== undefined && f.x >= r.x && f.y >= r.y && f.x + f.w <= r.x + r.w && f.y + f.h <= r.y + r.h;
});

test('a face missed in one frame is covered there by the detections around it, tracked to its time', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 200, growFracPerSecond: 0.5 });
  c.record({ ptsNs: 0, regions: [face(100)] });
  c.record({ ptsNs: 33 * MS, regions: [face(103)] }); // 3 px per frame to the right
  c.record({ ptsNs: 66 * MS, regions: [] }); // flicker: missed here
  const r = c.at(66 * MS);
  assert.ok(r.ok);
  // Where the face is now (x ≈ 106): inside a region tracked from the frame before.
  assert.ok(hidden(r.regions, face(106).box), JSON.stringify(r.regions));
  // A frame between a miss and a later find is covered by both sides.
  c.record({ ptsNs: 99 * MS, regions: [face(109)] });
  const mid = c.at(80 * MS);
  assert.ok(mid.ok && hidden(mid.regions, face(107).box));
});

test('detections farther than maxAgeMs add nothing, and a face found again is listed once', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 100, growFracPerSecond: 0 });
  c.record({ ptsNs: 0, regions: [face(500)] });
  c.record({ ptsNs: 150 * MS, regions: [face(100)] });
  c.record({ ptsNs: 200 * MS, regions: [face(100)] });
  const r = c.at(200 * MS);
  assert.ok(r.ok);
  // The face at 150 ms, standing still, is the one at 200 ms; the one at x 500 is 200 ms old.
  assert.deepEqual(r.regions, [face(100)]);
});
