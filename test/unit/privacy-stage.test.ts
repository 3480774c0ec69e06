import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { RedactedImage } from '../../agent/src/privacy/gate.js';
import type { Frame } from '../../agent/src/types.js';

const frame = (index: number): Frame => ({ width: 32, height: 24, data: new Uint8Array(32 * 24 * 3).fill(90), index, ptsNs: index * 40e6, capturedAtNs: 0, sourceId: 'cam' });

test('the stage detects every n-th frame, tracks between, and withholds after a failure until recovery', async () => {
  const config = parsePrivacyConfig({ everyNFrames: 3, gate: { maxAgeMs: 100 }, plates: { enabled: false } });
  let fail = false;
  const sent: RedactedImage[] = [];
  const s2 = new PrivacyStage({
    config, sink: (i) => { sent.push(i); },
    createDetector: (deps) => new PrivacyDetector({
      ...deps,
      faces: { detect: async () => { if (fail) throw new Error('boom'); return [{ classId: 0, label: 'face', score: 0.9, box: { x: 4, y: 4, w: 8, h: 8 } }]; } },
    }),
  });
  assert.equal((await s2.submit(frame(0), 'alert-snapshot')).released, false, 'a stage that is not started releases nothing');
  await s2.start();
  await s2.start();
  const ran: boolean[] = [];
  for (let i = 0; i < 4; i++) ran.push(await s2.observe(frame(i), []));
  assert.deepEqual(ran, [true, false, false, true]);
  assert.equal((await s2.submit(frame(2), 'alert-snapshot')).released, true); // tracked, 40 ms from frame 3
  fail = true;
  assert.equal(await s2.observe(frame(6), []), false);
  const r = await s2.submit(frame(6), 'alert-snapshot');
  assert.deepEqual([r.released, !r.released && r.reason], [false, 'failed']);
  fail = false;
  await s2.observe(frame(9), []);
  assert.equal((await s2.submit(frame(9), 'debug-stream')).released, true);
  assert.equal(sent.length, 2);
  assert.equal(s2.metrics.snapshot().detectorFailures, 1);
  await s2.stop();
  await s2.stop();
  assert.equal((await s2.submit(frame(9), 'debug-stream')).released, false, 'a stopped stage releases nothing');
});
