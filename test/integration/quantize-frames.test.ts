/**
 * Calibration frames are decoded once per selection and replayed to the later passes of an INT8
 * preparation (fleet-server/src/quantize/frames.ts), on a real video (GStreamer) and an image directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { sourceFrames, type FrameSelection, type SourceFrame } from '../../fleet-server/src/quantize/frames.js';

const VIDEO = 'assets/video/vtest.avi';
const FACES = 'assets/images/faces';
const missing = [VIDEO, FACES].filter((p) => !existsSync(p));

async function all(sel: FrameSelection, stopAfter = Infinity): Promise<SourceFrame[]> {
  const out: SourceFrame[] = [];
  for await (const f of sourceFrames(sel)) {
    out.push(f);
    if (out.length >= stopAfter) break;
  }
  return out;
}

test('a selection read to its end is replayed (same frames, not decoded again); one read in part, a copy of it, or one changed since decodes afresh', { skip: missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false }, async () => {
  for (const sel of [{ source: VIDEO, maxFrames: 3, stride: 40 }, { source: FACES, maxFrames: 4 }] as FrameSelection[]) {
    const partial = await all(sel, 1);
    const first = await all(sel);
    assert.equal(first.length, sel.maxFrames);
    assert.notEqual(first[0], partial[0], `${sel.source}: a pass stopped early keeps nothing`);
    const again = await all(sel);
    assert.deepEqual(again.map((f) => f.index), first.map((f) => f.index));
    again.forEach((f, i) => assert.equal(f, first[i], `${sel.source}: frame ${f.index} replayed, not decoded again`));
    const copy = await all({ ...sel });
    assert.notEqual(copy[0], first[0], `${sel.source}: another selection object decodes its own frames`);
    copy.forEach((f, i) => assert.deepEqual(f.image.data, first[i].image.data, `${sel.source}: frame ${f.index} decodes to the same pixels`));
  }
  const video = (await all({ source: VIDEO, maxFrames: 3, stride: 40 })).map((f) => f.index);
  assert.deepEqual(video, [0, 40, 80]);
  // A selection changed after it was read is read as it is now, not replayed as it was.
  const changed: FrameSelection = { source: FACES, maxFrames: 2 };
  await all(changed);
  changed.maxFrames = 3;
  assert.equal((await all(changed)).length, 3);
});
