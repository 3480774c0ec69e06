/**
 * A face or vehicle whose score is not a number (a broken model run) fails every threshold
 * (`NaN >= min` is false) and was dropped silently: the image left as redacted with that face or
 * plate unhidden. Now the image is withheld (redaction-error, counted), as for a box that cannot be placed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PlateFinder } from '../../agent/src/privacy/plates.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Detection, Frame } from '../../agent/src/types.js';

function frame(): Frame {
  const data = new Uint8Array(160 * 120 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 255;
  return { width: 160, height: 120, data, index: 0, ptsNs: 0, capturedAtNs: 0, sourceId: 'cam' };
}

async function snapshot(opts: { faces?: Detection[]; main?: Detection[] }) {
  const config = parsePrivacyConfig({ faces: { headBand: { enabled: false } } });
  const sent: unknown[] = [];
  const stage = new PrivacyStage({
    config, sink: (i) => { sent.push(i); },
    createDetector: (deps) => new PrivacyDetector({
      ...deps, faceScoreThreshold: 0.5, faces: { detect: async () => opts.faces ?? [] }, plates: new PlateFinder({ spec: config.plates }),
    }),
  });
  await stage.start();
  const f = frame();
  await stage.observe(f, opts.main ?? []);
  const outcome = await stage.submit(f, 'alert-snapshot');
  await stage.stop();
  return { outcome, sent, metrics: stage.metrics.snapshot() };
}

const face = (score: number, box = { x: 40, y: 30, w: 24, h: 24 }): Detection => ({ classId: 0, label: 'face', score, box });

test('a face whose score is NaN withholds the image, counted as redaction-error', async () => {
  const { outcome, sent, metrics } = await snapshot({ faces: [face(Number.NaN)] });
  assert.deepEqual([outcome.released, !outcome.released && outcome.reason], [false, 'redaction-error']);
  assert.equal(sent.length, 0);
  assert.equal(metrics.imagesWithheld['redaction-error'], 1);
});

test('a NaN-score face inside another face is not merged away: still withheld', async () => {
  const { outcome } = await snapshot({ faces: [face(0.9, { x: 30, y: 20, w: 50, h: 50 }), face(Number.NaN)] });
  assert.deepEqual([outcome.released, !outcome.released && outcome.reason], [false, 'redaction-error']);
});

test('a vehicle whose score is NaN withholds the image, counted as redaction-error', async () => {
  const { outcome, sent, metrics } = await snapshot({ main: [{ classId: 2, label: 'car', score: Number.NaN, box: { x: 20, y: 20, w: 100, h: 80 } }] });
  assert.deepEqual([outcome.released, !outcome.released && outcome.reason], [false, 'redaction-error']);
  assert.equal(sent.length, 0);
  assert.equal(metrics.imagesWithheld['redaction-error'], 1);
});

test('a face or vehicle below its threshold is still left out, and the image released', async () => {
  const { outcome } = await snapshot({ faces: [face(0.2)], main: [{ classId: 2, label: 'car', score: 0.05, box: { x: 20, y: 20, w: 100, h: 80 } }] });
  assert.ok(outcome.released);
  assert.deepEqual(outcome.image.regions, []);
});
