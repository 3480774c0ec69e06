/**
 * everyNFrames counts the frames the stage sees per camera, not frame indices: the capture queue
 * drops frames, so indices skip. With everyNFrames 2 and a pipeline that took every other frame
 * (odd indices only), the privacy detector never ran and every snapshot was withheld; taking even
 * indices, it ran on every frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Frame } from '../../agent/src/types.js';

const frame = (index: number, sourceId = 'cam'): Frame => ({ width: 8, height: 8, data: new Uint8Array(192), index, ptsNs: index * 33_333_333, capturedAtNs: 0, sourceId });

async function stageOf(everyNFrames: number): Promise<PrivacyStage> {
  const config = parsePrivacyConfig({ everyNFrames, plates: { enabled: false } });
  const stage = new PrivacyStage({ config, sink: () => undefined, createDetector: (deps) => new PrivacyDetector({ ...deps, faces: { detect: async () => [] } }) });
  await stage.start();
  return stage;
}

test('with frames dropped (indices skip), the detector runs on every n-th frame the stage sees', async () => {
  for (const first of [1, 2]) {
    const stage = await stageOf(2);
    let ran = 0, released = 0;
    for (let i = first; i < first + 40; i += 2) {
      if (await stage.observe(frame(i), [])) ran++;
      if ((await stage.submit(frame(i), 'alert-snapshot')).released) released++;
    }
    assert.deepEqual([ran, released], [10, 20], `indices from ${first}, step 2`);
    await stage.stop();
  }
});

test('each camera has its own cadence', async () => {
  const stage = await stageOf(3);
  const ran: string[] = [];
  // Camera b's frames come in between a's: counted together, b would run on none of its frames.
  for (let i = 0; i < 6; i++) {
    for (const cam of ['a', 'b']) if (await stage.observe(frame(i, cam), [])) ran.push(`${cam}${i}`);
  }
  assert.deepEqual(ran, ['a0', 'b0', 'a3', 'b3']);
  await stage.stop();
});
