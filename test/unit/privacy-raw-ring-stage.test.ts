/**
 * privacy.rawRing was documented and built but nothing saved to it. When enabled, the stage keeps
 * the unredacted original of each image submitted to its gate (released or withheld) in the local
 * ring, per camera; when disabled (the default) nothing touches disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Frame } from '../../agent/src/types.js';

const frame = (index: number, sourceId: string): Frame => ({ width: 8, height: 6, data: new Uint8Array(8 * 6 * 3).fill(50), index, ptsNs: index * 40e6, capturedAtNs: 0, sourceId });

async function stageWith(rawRing: object): Promise<PrivacyStage> {
  const config = parsePrivacyConfig({ plates: { enabled: false }, gate: { maxAgeMs: 100 }, rawRing });
  const stage = new PrivacyStage({ config, sink: () => undefined, createDetector: (deps) => new PrivacyDetector({ ...deps, faces: { detect: async () => [] } }) });
  await stage.start();
  return stage;
}

test('enabled: every submitted image is kept raw, per camera, released or withheld', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'ef-raw-stage-')), 'ring');
  t.after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  const stage = await stageWith({ enabled: true, dir, maxFrames: 10 });
  await stage.observe(frame(1, 'lobby'), []);
  assert.equal((await stage.submit(frame(1, 'lobby'), 'alert-snapshot')).released, true);
  assert.equal((await stage.submit(frame(1, 'yard'), 'alert-snapshot')).released, false, 'yard never ran the detector');
  assert.deepEqual(readdirSync(dir).sort(), ['raw-00000000000040000000-lobby.png', 'raw-00000000000040000000-yard.png']);
  await stage.stop();
});

test('disabled (the default): nothing is written', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'ef-raw-stage-')), 'ring');
  t.after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  const stage = await stageWith({ dir });
  await stage.observe(frame(1, 'lobby'), []);
  await stage.submit(frame(1, 'lobby'), 'alert-snapshot');
  assert.equal(existsSync(dir), false);
  await stage.stop();
});

test('a ring that cannot be written is counted and does not change what the gate decides', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ef-raw-stage-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  writeFileSync(join(base, 'file'), 'not a directory');
  const stage = await stageWith({ enabled: true, dir: join(base, 'file', 'ring') });
  await stage.observe(frame(1, 'lobby'), []);
  assert.equal((await stage.submit(frame(1, 'lobby'), 'alert-snapshot')).released, true);
  assert.equal(stage.rawRingWriteFailures, 1);
  await stage.stop();
});
