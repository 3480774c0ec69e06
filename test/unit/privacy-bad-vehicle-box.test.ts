/**
 * A vehicle box that cannot be placed (NaN, empty, negative) says nothing of where its plate is.
 * PlateFinder dropped it silently (its size check is false for NaN) and the snapshot left as
 * redacted with the plate readable; now the image is withheld, as for such a face box, and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PlateFinder } from '../../agent/src/privacy/plates.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Box, Frame } from '../../agent/src/types.js';

const bad: Box[] = [
  { x: Number.NaN, y: 10, w: 60, h: 40 }, { x: 10, y: 10, w: Number.NaN, h: 40 }, { x: 10, y: 10, w: 0, h: 40 },
  { x: 10, y: 10, w: 60, h: -40 }, { x: 10, y: Number.POSITIVE_INFINITY, w: 60, h: 40 },
];

function frame(): Frame {
  const data = new Uint8Array(160 * 120 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 255;
  return { width: 160, height: 120, data, index: 0, ptsNs: 0, capturedAtNs: 0, sourceId: 'cam' };
}

async function snapshotWith(box: Box) {
  const config = parsePrivacyConfig({ faces: { enabled: false } });
  const sent: unknown[] = [];
  const stage = new PrivacyStage({
    config, sink: (i) => { sent.push(i); },
    createDetector: (deps) => new PrivacyDetector({ ...deps, plates: new PlateFinder({ spec: config.plates }) }),
  });
  await stage.start();
  const f = frame();
  await stage.observe(f, [{ classId: 2, label: 'car', score: 0.9, box }]);
  const outcome = await stage.submit(f, 'alert-snapshot');
  await stage.stop();
  return { outcome, sent, metrics: stage.metrics.snapshot() };
}

for (const box of bad) {
  test(`a vehicle box ${JSON.stringify(box)} withholds the image, counted as redaction-error`, async () => {
    const { outcome, sent, metrics } = await snapshotWith(box);
    assert.deepEqual([outcome.released, !outcome.released && outcome.reason], [false, 'redaction-error']);
    assert.equal(sent.length, 0);
    assert.equal(metrics.imagesWithheld['redaction-error'], 1);
  });
}

test('a vehicle box that can be placed gets its plate band and the image is released', async () => {
  const { outcome, metrics } = await snapshotWith({ x: 20, y: 20, w: 100, h: 80 });
  assert.ok(outcome.released);
  assert.ok(outcome.image.regions.some((r) => r.kind === 'plate' && r.source === 'band'));
  assert.equal(metrics.imagesWithheld['redaction-error'], 0);
});

test('a vehicle smaller than minVehicleSizePx is still left out (too small for a readable plate), not withheld', async () => {
  const { outcome } = await snapshotWith({ x: 20, y: 20, w: 10, h: 8 });
  assert.ok(outcome.released);
  assert.deepEqual(outcome.image.regions, []);
});
