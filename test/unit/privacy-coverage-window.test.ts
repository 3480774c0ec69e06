/**
 * The coverage kept the last 8 observations per camera whatever the frame rate: at 30 fps 267 ms,
 * not the gate's maxAgeMs (500 ms), so a face found once and then missed by the detector (turned
 * aside, flicker) left the frames from 300 ms on unhidden, as covered. It now keeps them by age.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyCoverage } from '../../agent/src/privacy/coverage.js';

const FRAME_NS = 1e9 / 30;
const face = { kind: 'face' as const, source: 'face-model' as const, score: 0.9, box: { x: 400, y: 100, w: 50, h: 50 } };
const hasFace = (c: PrivacyCoverage, ptsNs: number) => {
  const r = c.at(ptsNs, 'cam');
  assert.ok(r.ok, JSON.stringify(r));
  return r.regions.some((q) => q.box.x <= face.box.x && q.box.x + q.box.w >= face.box.x + face.box.w);
};

test('at 30 fps a face found once still covers the frames up to maxAgeMs after it, and not beyond', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 500, growFracPerSecond: 0.5 });
  c.record({ ptsNs: 0, regions: [face], sourceId: 'cam' });
  for (let i = 1; i <= 15; i++) {
    c.record({ ptsNs: i * FRAME_NS, regions: [], sourceId: 'cam' }); // missed from here on
    assert.ok(hasFace(c, i * FRAME_NS), `frame ${i} (${(i * FRAME_NS / 1e6).toFixed(0)} ms after the face) lost it`);
  }
  c.record({ ptsNs: 16 * FRAME_NS, regions: [], sourceId: 'cam' });
  assert.equal(hasFace(c, 16 * FRAME_NS), false, '533 ms: past maxAgeMs');
});

test('a camera whose pts start again is covered by its new observations only', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 500, growFracPerSecond: 0.5 });
  for (let i = 0; i < 30; i++) c.record({ ptsNs: 3_600e9 + i * FRAME_NS, regions: [face], sourceId: 'cam' });
  c.record({ ptsNs: 0, regions: [], sourceId: 'cam' });
  assert.equal(hasFace(c, 0), false);
  c.record({ ptsNs: FRAME_NS, regions: [], sourceId: 'cam' });
  assert.equal(hasFace(c, FRAME_NS), false);
});

test('past maxObservations the newest are kept: memory stays bounded at any rate', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 500, growFracPerSecond: 0, maxObservations: 16 });
  c.record({ ptsNs: 0, regions: [face], sourceId: 'cam' });
  for (let i = 1; i <= 100; i++) c.record({ ptsNs: i * 1e6, regions: [], sourceId: 'cam' }); // 1000 runs a second
  // 100 ms after the face, within maxAgeMs, but 100 observations later: only the newest 16 are kept.
  assert.equal(hasFace(c, 100e6), false);
  assert.ok(c.at(100e6, 'cam').ok);
});
