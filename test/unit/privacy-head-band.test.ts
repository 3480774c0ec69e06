/**
 * A person the main detector found, in whose head band the face model found no face (turned away,
 * too small, missed), gets the top of its box hidden by default; it got nothing, and the gate
 * released the image as covered with the face in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { PrivacyCoverage } from '../../agent/src/privacy/coverage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PrivacyGate } from '../../agent/src/privacy/gate.js';
import { PrivacyMetrics } from '../../agent/src/privacy/metrics.js';
import { headBand, headBands } from '../../agent/src/privacy/persons.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Detection, RgbImage } from '../../agent/src/types.js';

const person = (x: number, y = 10, label = 'person', score = 0.8): Detection => ({ classId: 0, label, score, box: { x, y, w: 40, h: 100 } });
const face = (x: number, y: number) => ({ kind: 'face' as const, source: 'face-model' as const, score: 0.9, box: { x, y, w: 12, h: 12 } });

test('head bands: persons without a face in their top band get it hidden; others, other labels and low scores do not', () => {
  const spec = parsePrivacyConfig({}).faces.headBand;
  assert.deepEqual(headBand({ x: 10, y: 20, w: 40, h: 100 }, spec), { x: 10, y: 20, w: 40, h: 30 });
  const regions = headBands([person(0), person(100), person(200, 10, 'car'), person(300, 10, 'person', 0.1)], [face(114, 14)], spec);
  assert.deepEqual(regions.map((r) => [r.kind, r.source, r.box.x]), [['face', 'band', 0]]);
  assert.deepEqual(headBands([person(0)], [], { ...spec, enabled: false }), []);
  // A face lower in the box (the person next to it, in front) does not stand for this one's head.
  assert.equal(headBands([person(0)], [face(10, 80)], spec).length, 1);
});

test('a person whose face the face model missed leaves the gate with its head hidden', async () => {
  const width = 100, height = 120;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  const frame: RgbImage & { ptsNs: number } = { width, height, data, ptsNs: 0 };
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const coverage = new PrivacyCoverage({ maxAgeMs: 100, growFracPerSecond: 0.5 });
  const metrics = new PrivacyMetrics();
  const detector = new PrivacyDetector({ faces: { detect: async () => [] }, headBand: config.faces.headBand, coverage, metrics });
  await detector.run(frame, [person(30, 10)]);
  const gate = new PrivacyGate({ gate: { ...config.gate, jpegQuality: 100 }, redaction: config.redaction, coverage, metrics });
  const out = await gate.submit(frame, 'alert-snapshot');
  assert.ok(out.released);
  assert.deepEqual(out.image.regions.map((r) => [r.kind, r.source]), [['face', 'band']]);
  // The head (top of the person box) is hidden in the JPEG: its pixels no longer match the frame's.
  const { data: jpeg } = await sharp(out.image.jpeg).raw().toBuffer({ resolveWithObject: true });
  let diff = 0, n = 0;
  for (let y = 12; y < 38; y++) for (let x = 32; x < 68; x++) { for (let c = 0; c < 3; c++) diff += Math.abs(jpeg[(y * width + x) * 3 + c] - data[(y * width + x) * 3 + c]); n += 3; }
  assert.ok(diff / n > 30, `the head area changed by only ${(diff / n).toFixed(1)} per channel on average`);
});
