import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawFrameRing } from '../../agent/src/privacy/raw-ring.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';

const frame = (ptsNs: number) => ({ width: 4, height: 2, data: new Uint8Array(24).fill(7), ptsNs });

test('the raw ring is off by default and then writes nothing', async () => {
  const spec = parsePrivacyConfig({}).rawRing;
  assert.equal(spec.enabled, false);
  const calls: string[] = [];
  const fs = { mkdir: async (p: string) => { calls.push(`mkdir ${p}`); }, readdir: async () => [], writeFile: async (p: string) => { calls.push(`write ${p}`); }, unlink: async (p: string) => { calls.push(`unlink ${p}`); } };
  const ring = new RawFrameRing(spec, fs);
  assert.equal(await ring.save(frame(1)), undefined);
  assert.deepEqual(calls, []);
  assert.equal(ring.stats().refused, 1);
});

test('when enabled it keeps at most maxFrames files, oldest evicted, mode 0600', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-raw-ring-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ring = new RawFrameRing(parsePrivacyConfig({ rawRing: { enabled: true, dir, maxFrames: 2 } }).rawRing);
  for (const pts of [1, 2, 3]) await ring.save(frame(pts));
  const files = readdirSync(dir).sort();
  assert.deepEqual(files, ['raw-00000000000000000002.png', 'raw-00000000000000000003.png']);
  assert.equal(statSync(join(dir, files[0])).mode & 0o777, 0o600);
  assert.deepEqual(ring.stats(), { saved: 3, refused: 0, evicted: 1 });
});
