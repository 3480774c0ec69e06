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
  for (const i of [4, 5]) await s2.observe(frame(i), []);
  assert.equal(await s2.observe(frame(6), []), false);
  const r = await s2.submit(frame(6), 'alert-snapshot');
  assert.deepEqual([r.released, !r.released && r.reason], [false, 'failed']);
  fail = false;
  for (const i of [7, 8, 9]) await s2.observe(frame(i), []);
  assert.equal((await s2.submit(frame(9), 'alert-snapshot')).released, true);
  assert.equal(sent.length, 2);
  assert.equal(s2.metrics.snapshot().detectorFailures, 1);
  await s2.stop();
  await s2.stop();
  assert.equal((await s2.submit(frame(9), 'alert-snapshot')).released, false, 'a stopped stage releases nothing');
});

test('two cameras: one camera\'s detections never cover the other\'s frame at the same pts', async () => {
  // One stage serves every camera of an agent, and two cameras at one frame rate share their pts
  // sequence. Coverage was keyed by pts alone: camera B's faces went out under camera A's (empty) regions.
  const config = parsePrivacyConfig({ everyNFrames: 2, gate: { maxAgeMs: 100 }, plates: { enabled: false } });
  const faceOf: Record<string, { x: number; y: number; w: number; h: number }[]> = { lobby: [{ x: 4, y: 4, w: 8, h: 8 }], yard: [] };
  let failYard = false;
  const sent: RedactedImage[] = [];
  const stage = new PrivacyStage({
    config, sink: (i) => { sent.push(i); },
    createDetector: (deps) => new PrivacyDetector({
      ...deps,
      faces: { detect: async (img) => {
        const cam = (img as Frame).sourceId;
        if (cam === 'yard' && failYard) throw new Error('yard model crashed');
        return faceOf[cam].map((box) => ({ classId: 0, label: 'face', score: 0.9, box }));
      } },
    }),
  });
  await stage.start();
  const at = (cam: string, index: number): Frame => ({ ...frame(index), sourceId: cam });
  // The yard camera's detector runs first at each pts (it finds nothing); lobby's frame must still get lobby's face region.
  for (const i of [0, 1, 2]) { await stage.observe(at('yard', i), []); await stage.observe(at('lobby', i), []); }
  const lobby = await stage.submit(at('lobby', 2), 'alert-snapshot');
  assert.ok(lobby.released);
  // Lobby's own face: found at this pts, and (tracked, a little grown) from its run 80 ms before.
  assert.deepEqual(lobby.image.regions[0].box, { x: 4, y: 4, w: 8, h: 8 }, 'lobby\'s own face region');
  assert.ok(lobby.image.regions.every((r) => Math.abs(r.box.x - 4) < 1 && Math.abs(r.box.w - 8) < 2), 'only lobby\'s face');
  // A camera that never ran the detector is not covered by another camera's run.
  const gate = await stage.submit(at('gate', 2), 'alert-snapshot');
  assert.deepEqual([gate.released, !gate.released && gate.reason], [false, 'never']);
  // A failure on yard withholds yard's frames only, and lobby's success does not clear it.
  failYard = true;
  for (const i of [3, 4]) { await stage.observe(at('yard', i), []); await stage.observe(at('lobby', i), []); }
  const yard = await stage.submit(at('yard', 4), 'alert-snapshot');
  assert.deepEqual([yard.released, !yard.released && yard.reason], [false, 'failed']);
  assert.ok((await stage.submit(at('lobby', 4), 'alert-snapshot')).released);
  await stage.stop();
});

test('a privacy detector that keeps failing (its worker crashed) is reopened, and images are released again', async () => {
  // A crashed worker fails every later call the same way; the stage logged "withheld until it
  // recovers" and withheld every snapshot until the agent restarted.
  const config = parsePrivacyConfig({ everyNFrames: 1, gate: { maxAgeMs: 100 }, plates: { enabled: false } });
  let created = 0;
  const stage = new PrivacyStage({
    config, sink: () => undefined,
    createDetector: (deps) => {
      const instance = ++created;
      let calls = 0;
      return new PrivacyDetector({
        ...deps,
        faces: { detect: async () => {
          if (instance === 1 && ++calls > 2) throw new Error('TFLite inference: the worker exited unexpectedly with code 1');
          return [{ classId: 0, label: 'face', score: 0.9, box: { x: 4, y: 4, w: 8, h: 8 } }];
        } },
      });
    },
  });
  await stage.start();
  const outcomes: boolean[] = [];
  for (let i = 0; i < 5; i++) outcomes.push(await stage.observe(frame(i), []));
  assert.deepEqual(outcomes, [true, true, false, false, false]);
  assert.equal((await stage.submit(frame(4), 'alert-snapshot')).released, false, 'withheld while it fails');
  for (let i = 0; i < 50 && created < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(created, 2, 'reopened after three failures in a row');
  assert.equal(await stage.observe(frame(5), []), true);
  assert.equal((await stage.submit(frame(5), 'alert-snapshot')).released, true);
  await stage.stop();
});
