/**
 * The privacy stage kept the person boxes of a camera's last 32 frames for the snapshots' head
 * bands: at 120 fps 267 ms, less than gate.maxAgeMs (500 ms), so a person seen and then missed by
 * the main detector for 300 ms left its turned-away head unhidden in a snapshot. The boxes are now
 * kept by age (gate.maxAgeMs), with a count cap far above any camera here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Box, Frame } from '../../agent/src/types.js';

const FRAME_NS = Math.round(1e9 / 120);
const data = new Uint8Array(320 * 240 * 3).fill(90);
const frame = (index: number): Frame => ({ width: 320, height: 240, data, index, ptsNs: index * FRAME_NS, capturedAtNs: 0, sourceId: 'cam' });
const P = { classId: 0, label: 'person', score: 0.9, box: { x: 100, y: 40, w: 40, h: 120 } };

async function snapshotAfterMissed(missedFrames: number) {
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const stage = new PrivacyStage({
    config, sink: () => undefined,
    createDetector: (deps) => new PrivacyDetector({ ...deps, faces: { detect: async () => [] }, headBand: config.faces.headBand }),
  });
  await stage.start();
  await stage.observe(frame(0), [P]); // seen, face turned away
  for (let i = 1; i <= missedFrames; i++) await stage.observe(frame(i), []); // missed by the main detector
  const out = await stage.submit(frame(missedFrames), 'alert-snapshot');
  await stage.stop();
  assert.ok(out.released);
  return out.image.regions.filter((r) => r.source === 'band').map((r) => r.box);
}

const hidesHead = (bands: Box[]) => bands.some((b) => b.x <= 100 && b.y <= 40 && b.x + b.w >= 140 && b.y + b.h >= 60);

test('at 120 fps a person missed for 40 frames (333 ms, within gate.maxAgeMs) still gets its head band', async () => {
  const bands = await snapshotAfterMissed(40);
  assert.ok(hidesHead(bands), JSON.stringify(bands));
});

test('past gate.maxAgeMs (65 frames, 542 ms at 120 fps) the person is no longer carried', async () => {
  assert.deepEqual(await snapshotAfterMissed(65), []);
});
