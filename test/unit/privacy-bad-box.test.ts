/**
 * A face box that cannot be placed (NaN, empty, negative) hides nothing. It was skipped silently
 * and the image released as redacted with the face in it; now the image is withheld (fails closed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { redactImage } from '../../agent/src/privacy/redactor.js';
import type { Box, Frame } from '../../agent/src/types.js';

const bad: Box[] = [{ x: Number.NaN, y: 10, w: 20, h: 20 }, { x: 10, y: 10, w: Number.NaN, h: 20 }, { x: 10, y: 10, w: -20, h: 20 }, { x: 10, y: 10, w: 20, h: 0 }, { x: 10, y: Number.POSITIVE_INFINITY, w: 20, h: 20 }];

function frame(): Frame {
  const data = new Uint8Array(64 * 48 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 255;
  return { width: 64, height: 48, data, index: 0, ptsNs: 0, capturedAtNs: 0, sourceId: 'cam' };
}

for (const box of bad) {
  test(`a face box ${JSON.stringify(box)} withholds the image`, async () => {
    const config = parsePrivacyConfig({ plates: { enabled: false } });
    const sent: unknown[] = [];
    const stage = new PrivacyStage({
      config, sink: (i) => { sent.push(i); },
      createDetector: (deps) => new PrivacyDetector({ ...deps, faces: { detect: async () => [{ classId: 0, label: 'face', score: 0.9, box }] } }),
    });
    await stage.start();
    const f = frame();
    await stage.observe(f, []);
    const r = await stage.submit(f, 'alert-snapshot');
    assert.deepEqual([r.released, !r.released && r.reason], [false, 'redaction-error']);
    assert.equal(sent.length, 0);
    await stage.stop();
  });
}

test('redactImage refuses a region it cannot place, and still skips one wholly outside the image', async () => {
  const f = frame();
  await assert.rejects(redactImage(f, [{ x: 10, y: 10, w: Number.NaN, h: 20 }], parsePrivacyConfig({}).redaction), /finite x, y and positive w, h/);
  const out = await redactImage(f, [{ x: 500, y: 500, w: 20, h: 20 }], parsePrivacyConfig({}).redaction);
  assert.deepEqual(out.rects, []);
});

test('a person box that cannot be placed withholds the image too (its head band hides nothing)', async () => {
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const stage = new PrivacyStage({ config, sink: () => undefined, createDetector: (deps) => new PrivacyDetector({ ...deps, faces: { detect: async () => [] }, headBand: config.faces.headBand }) });
  await stage.start();
  const f = frame();
  await stage.observe(f, [{ classId: 0, label: 'person', score: 0.9, box: { x: 5, y: Number.NaN, w: 10, h: 30 } }]);
  const r = await stage.submit(f, 'alert-snapshot');
  assert.deepEqual([r.released, !r.released && r.reason], [false, 'redaction-error']);
  await stage.stop();
});
