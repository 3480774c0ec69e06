import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyCoverage } from '../../agent/src/privacy/coverage.js';

const MS = 1e6;
const face = (x: number) => ({ kind: 'face' as const, source: 'face-model' as const, score: 0.9, box: { x, y: 100, w: 50, h: 50 } });

test('no detection yet → not covered (never); exact pts → the detected regions', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 200, growFracPerSecond: 0.5 });
  assert.deepEqual(c.at(0), { ok: false, reason: 'never', detail: 'the privacy detector has not run yet' });
  c.record({ ptsNs: 1000 * MS, regions: [face(100)] });
  const r = c.at(1000 * MS);
  assert.ok(r.ok);
  assert.deepEqual(r.regions, [face(100)]);
});

test('between detections the region moves with its velocity and grows; beyond maxAgeMs it is stale', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 200, growFracPerSecond: 0.5 });
  c.record({ ptsNs: 0, regions: [face(100)] });
  c.record({ ptsNs: 100 * MS, regions: [face(110)] }); // 100 px/s to the right
  const r = c.at(200 * MS);
  assert.ok(r.ok);
  assert.equal(r.ageMs, 100);
  const b = r.regions[0].box;
  // Hull of x 110..160 and predicted 120..170, grown by 0.5 * 0.1 s * 50 px = 2.5 px per side.
  assert.deepEqual(b, { x: 107.5, y: 97.5, w: 65, h: 55 });
  assert.equal(r.regions[0].source, 'tracked');
  const stale = c.at(301 * MS);
  assert.equal(stale.ok, false);
  assert.equal(!stale.ok && stale.reason, 'stale');
  // A frame older than the first detection but within maxAgeMs of it is covered by it.
  assert.ok(c.at(-50 * MS).ok);
});

test('a failure covers nothing from its pts on until a later success', () => {
  const c = new PrivacyCoverage({ maxAgeMs: 1000, growFracPerSecond: 0 });
  c.record({ ptsNs: 0, regions: [face(0)] });
  c.recordFailure(100 * MS, 'model crashed');
  assert.ok(c.at(50 * MS).ok, 'frames before the failure stay covered');
  const f = c.at(150 * MS);
  assert.equal(!f.ok && f.reason, 'failed');
  c.record({ ptsNs: 200 * MS, regions: [] });
  assert.ok(c.at(250 * MS).ok);
});
