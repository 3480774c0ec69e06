import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { PrivacyCoverage } from '../../agent/src/privacy/coverage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PrivacyGate, type RedactedImage } from '../../agent/src/privacy/gate.js';
import { PrivacyMetrics } from '../../agent/src/privacy/metrics.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Detection, RgbImage } from '../../agent/src/types.js';

const MS = 1e6;

function frame(ptsNs: number): RgbImage & { ptsNs: number } {
  const width = 64, height = 48;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  return { width, height, data, ptsNs };
}

function setup(policy: 'withhold' | 'blur-all', faces: () => Promise<Detection[]>) {
  const config = parsePrivacyConfig({ gate: { policy, maxAgeMs: 100 }, plates: { enabled: false } });
  const registry = new Registry();
  const metrics = new PrivacyMetrics(registry);
  const coverage = new PrivacyCoverage({ maxAgeMs: config.gate.maxAgeMs, growFracPerSecond: config.gate.growFracPerSecond });
  const sent: RedactedImage[] = [];
  const gate = new PrivacyGate({ gate: config.gate, redaction: config.redaction, coverage, metrics, sink: (img) => { sent.push(img); } });
  const detector = new PrivacyDetector({ faces: { detect: faces }, coverage, metrics });
  return { gate, detector, metrics, sent, registry };
}

const oneFace = async (): Promise<Detection[]> => [{ classId: 0, label: 'face', score: 0.9, box: { x: 10, y: 10, w: 20, h: 20 } }];

test('a covered frame is redacted and released; a stale one is withheld and counted', async () => {
  const { gate, detector, metrics, sent, registry } = setup('withhold', oneFace);
  await detector.run(frame(0));
  const ok = await gate.submit(frame(50 * MS), 'alert-snapshot');
  assert.equal(ok.released, true);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].regions.length, 1);
  assert.equal((await sharp(sent[0].jpeg).metadata()).format, 'jpeg');
  const stale = await gate.submit(frame(500 * MS), 'alert-snapshot');
  assert.deepEqual([stale.released, !stale.released && stale.reason], [false, 'stale']);
  assert.equal(sent.length, 1, 'a stale frame reached the sink');
  const m = metrics.snapshot();
  assert.equal(m.imagesRedacted, 1);
  assert.equal(m.regionsPerImage, 1);
  assert.equal(m.imagesWithheld.stale, 1);
  assert.equal(m.detectorRuns, 1);
  assert.match(await registry.metrics(), /ef_privacy_images_withheld_total\{reason="stale"\} 1/);
});

test('a failing privacy detector makes the gate withhold frames from that pts on', async () => {
  let fail = false;
  const { gate, detector, metrics, sent } = setup('withhold', async () => {
    if (fail) throw new Error('inference worker died');
    return oneFace();
  });
  await detector.run(frame(0));
  fail = true;
  await assert.rejects(detector.run(frame(40 * MS)), /worker died/);
  const r = await gate.submit(frame(40 * MS), 'alert-snapshot');
  assert.deepEqual([r.released, !r.released && r.reason], [false, 'failed']);
  assert.equal(sent.length, 0);
  assert.equal(metrics.snapshot().detectorFailures, 1);
  assert.equal(metrics.snapshot().imagesWithheld.failed, 1);
});

test('policy blur-all releases an uncovered frame fully blurred, never the original', async () => {
  const { gate, metrics, sent } = setup('blur-all', oneFace);
  const f = frame(0);
  const r = await gate.submit(f, 'alert-snapshot');
  assert.equal(r.released, true);
  assert.equal(sent[0].fullyBlurred, true);
  const { data } = await sharp(sent[0].jpeg).raw().toBuffer({ resolveWithObject: true });
  let diff = 0;
  for (let i = 0; i < data.length; i++) diff += Math.abs(data[i] - f.data[i]);
  assert.ok(diff / data.length > 20, 'the released image looks like the original');
  assert.equal(metrics.snapshot().imagesFullyBlurred, 1);
});

test('an image that cannot be redacted is withheld (fails closed)', async () => {
  const { gate, detector, sent, metrics } = setup('withhold', oneFace);
  await detector.run(frame(0));
  const bad = { ...frame(0), data: new Uint8Array(5) };
  const r = await gate.submit(bad, 'alert-snapshot');
  assert.deepEqual([r.released, !r.released && r.reason], [false, 'redaction-error']);
  assert.equal(sent.length, 0);
  assert.equal(metrics.snapshot().imagesWithheld['redaction-error'], 1);
});
