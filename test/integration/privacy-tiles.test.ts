/**
 * Small faces in a large frame: sample5 scaled to 1/4 (faces ≈ 50 px) on a 1920×1080 canvas. The
 * whole-frame pass of the 256-px face model misses most of them; a 3×2 tile grid finds all five.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import { TiledDetector, tileRects } from '../../agent/src/privacy/tiles.js';
import type { Detection } from '../../agent/src/types.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const PHOTO = 'assets/images/faces/sample5.jpg';
// Face centres of sample5 (hand-checked table in blazeface-faces.test.ts), × 0.25 + (1200, 500).
const FACES = [[860, 245], [1200, 350], [670, 560], [1520, 545], [460, 1045]].map(([x, y]) => ({ x: x / 4 + 1200, y: y / 4 + 500 }));

function found(dets: Detection[]): number {
  return FACES.filter((f) => dets.some((d) => Math.hypot(d.box.x + d.box.w / 2 - f.x, d.box.y + d.box.h / 2 - f.y) < 20 && d.box.w < 80)).length;
}

test('tile rectangles cover the frame with the requested overlap', () => {
  const r = tileRects(1920, 1080, { cols: 3, rows: 2, overlapFrac: 0.2 });
  assert.equal(r.length, 6);
  assert.deepEqual(r[0], { x: 0, y: 0, w: 739, h: 600 }); // ceil(1920 / (3 - 2 × 0.2)), 1080 / (2 - 0.2)
  assert.equal(r[5].x + r[5].w, 1920);
  assert.equal(r[5].y + r[5].h, 1080);
  assert.ok(r[0].x + r[0].w - r[1].x >= 0.2 * 739 - 1, 'neighbours overlap by ~20%');
});

test('a 3x2 tile grid finds the small faces that the whole-frame pass misses', async (t) => {
  if (!existsSync(MODEL) || !existsSync(PHOTO) || !existsSync('assets/models/blazeface-back/model.meta.json')) {
    t.skip('BlazeFace model, its metadata or the face photos are missing: run scripts/setup.sh and npx tsx scripts/prepare-models.ts');
    return;
  }
  const small = await sharp(PHOTO).resize(480).toBuffer();
  const { data, info } = await sharp({ create: { width: 1920, height: 1080, channels: 3, background: { r: 120, g: 120, b: 120 } } })
    .composite([{ input: small, left: 1200, top: 500 }]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const img = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  const model = await Detector.open({ modelPath: MODEL, scoreThreshold: 0.4, intraOpThreads: 1 });
  try {
    const whole = found(await model.detect(img));
    const tiled = found(await new TiledDetector(model, { cols: 3, rows: 2, overlapFrac: 0.2 }).detect(img));
    t.diagnostic(`small faces found: whole frame ${whole}/5, 3x2 tiles ${tiled}/5`);
    assert.ok(whole < 5, 'the whole-frame pass should miss some 50-px faces (else this test shows nothing)');
    assert.equal(tiled, 5);
  } finally {
    await model.close();
  }
});
