/**
 * preprocess.multipleOf with the real PP-OCR text detector: its feature pyramid adds maps upsampled
 * by 2, so an input side that is not a multiple of 32 fails inside the model (600 → "75 by 76").
 * A user who sets width/height 600 gets a 608×608 input, the frame letterboxed into it.
 * preprocess.maxUpscale (the installed text model's metadata: 2): a small vehicle crop is scaled up
 * at most twice and fed at that size, not at 640×640, and its plate is still found.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import { planTransform, preprocess, readImageFile } from '../../agent/src/preprocess/preprocess.js';
import { boxToSource } from '../../agent/src/preprocess/transform.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import type { RgbImage } from '../../agent/src/types.js';
import { PLATE, PLATE_PHOTO, withSyntheticPlate } from '../helpers/plate-photo.js';

const MODEL = 'assets/models/ppocr-det/model.onnx';

test('width/height are rounded up to multipleOf; the tensor and the transform agree', async () => {
  const spec: PreprocessSpec = { width: 600, height: 300, layout: 'NCHW', channelOrder: 'RGB', resize: 'letterbox', align: 'top-left', padValue: 0, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'uint8', multipleOf: 32 };
  const t = planTransform(spec, 1200, 400);
  assert.deepEqual([t.dstWidth, t.dstHeight], [608, 320]);
  assert.deepEqual([t.contentWidth, t.contentHeight], [608, 203]);
  const img: RgbImage = { width: 1200, height: 400, data: new Uint8Array(1200 * 400 * 3).fill(200) };
  assert.deepEqual((await preprocess(img, spec)).dims, [1, 3, 320, 608]);
  // Without multipleOf the size is taken as written.
  assert.deepEqual((await preprocess(img, { ...spec, multipleOf: undefined })).dims, [1, 3, 300, 600]);
});

test('ppocr-det with width/height 600 finds the text line instead of failing on every frame', async (t) => {
  if (!existsSync(MODEL)) { t.skip(`${MODEL} is missing: run scripts/setup.sh, then npx tsx scripts/prepare-models.ts`); return; }
  const dir = mkdtempSync(join(tmpdir(), 'ppocr-600-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(MODEL, join(dir, 'model.onnx'));
  const meta = JSON.parse(readFileSync('assets/models/ppocr-det/model.meta.json', 'utf8')) as { preprocess: { width: number; height: number; multipleOf?: number } };
  assert.equal(meta.preprocess.multipleOf, 32);
  meta.preprocess.width = 600;
  meta.preprocess.height = 600;
  writeFileSync(join(dir, 'model.meta.json'), JSON.stringify(meta));

  // A black-on-white text line at a known place on a grey 1000x300 frame.
  const line = { x: 400, y: 100, w: 240, h: 60 };
  const svg = `<svg width="${line.w}" height="${line.h}"><rect width="${line.w}" height="${line.h}" fill="white"/>` +
    `<text x="8" y="${line.h * 0.68}" font-size="${line.h * 0.5}" font-family="DejaVu Sans Mono, monospace" font-weight="bold" fill="black">KA 4821</text></svg>`;
  const { data, info } = await sharp({ create: { width: 1000, height: 300, channels: 3, background: { r: 120, g: 120, b: 120 } } })
    .composite([{ input: Buffer.from(svg), left: line.x, top: line.y }]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const frame: RgbImage = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };

  const detector = await Detector.open({ modelPath: join(dir, 'model.onnx'), intraOpThreads: 1 });
  try {
    const dets = await detector.detect(frame);
    t.diagnostic(`detections: ${JSON.stringify(dets.map((d) => d.box))}`);
    const hit = dets.find((d) => {
      const cx = d.box.x + d.box.w / 2, cy = d.box.y + d.box.h / 2;
      return cx > line.x && cx < line.x + line.w && cy > line.y && cy < line.y + line.h;
    });
    assert.ok(hit, `no text box on the line at ${JSON.stringify(line)}; found ${JSON.stringify(dets.map((d) => d.box))}`);
  } finally {
    await detector.close();
  }
});

test('maxUpscale: the input shrinks to the image scaled up at most that much, rounded up to multipleOf; boxes map back', async () => {
  const spec: PreprocessSpec = { width: 640, height: 640, layout: 'NCHW', channelOrder: 'BGR', resize: 'letterbox', align: 'top-left', padValue: 0, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'float32', multipleOf: 32, maxUpscale: 2 };
  // A 36×46 vehicle crop (vtest.avi's parked "car"): 72×92 of content in a 96×96 input, not 640×640.
  const small = planTransform(spec, 36, 46);
  assert.deepEqual([small.dstWidth, small.dstHeight, small.contentWidth, small.contentHeight, small.scaleX, small.scaleY], [96, 96, 72, 92, 2, 2]);
  const crop: RgbImage = { width: 36, height: 46, data: new Uint8Array(36 * 46 * 3).fill(90) };
  assert.deepEqual((await preprocess(crop, spec)).dims, [1, 3, 96, 96]);
  assert.deepEqual(boxToSource(small, { x: 10, y: 20, w: 40, h: 30 }), { x: 5, y: 10, w: 20, h: 15 });
  // A frame larger than the input is scaled down into it as before, the other side rounded up to 32.
  const big = planTransform(spec, 1200, 400);
  assert.deepEqual([big.dstWidth, big.dstHeight, big.contentWidth, big.contentHeight], [640, 224, 640, 213]);
  // Never below one multiple; without multipleOf the sides are the scaled ones.
  assert.deepEqual([planTransform(spec, 5, 3).dstWidth, planTransform(spec, 5, 3).dstHeight], [32, 32]);
  const plain = planTransform({ ...spec, multipleOf: undefined, align: 'center' }, 100, 50);
  assert.deepEqual([plain.dstWidth, plain.dstHeight, plain.padX, plain.padY], [200, 100, 0, 0]);
  // stretch scales each axis on its own, each up to maxUpscale.
  const st = planTransform({ ...spec, resize: 'stretch' }, 100, 500);
  assert.deepEqual([st.dstWidth, st.dstHeight], [224, 640]);
});

test('ppocr-det as installed (maxUpscale 2) finds a plate on a 150×121 car crop at a 320×256 input', async (t) => {
  if (!existsSync(MODEL) || !existsSync(PLATE_PHOTO)) { t.skip(`${MODEL} or ${PLATE_PHOTO} is missing: run scripts/setup.sh`); return; }
  const meta = JSON.parse(readFileSync('assets/models/ppocr-det/model.meta.json', 'utf8')) as { preprocess: PreprocessSpec };
  assert.equal(meta.preprocess.maxUpscale, 2);
  // The car photo with a sharp plate composited over its own, scaled to a quarter of its width.
  const synthetic = await withSyntheticPlate(await readImageFile(PLATE_PHOTO));
  const k = 0.25;
  const { data, info } = await sharp(synthetic.data, { raw: { width: synthetic.width, height: synthetic.height, channels: 3 } })
    .resize(Math.round(synthetic.width * k), Math.round(synthetic.height * k), { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const crop: RgbImage = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  const plan = planTransform(meta.preprocess, crop.width, crop.height);
  assert.deepEqual([crop.width, crop.height, plan.dstWidth, plan.dstHeight], [150, 121, 320, 256]);
  const detector = await Detector.open({ modelPath: MODEL, intraOpThreads: 1 });
  try {
    const dets = await detector.detect(crop);
    const plate = { x: PLATE.x * k, y: PLATE.y * k, w: PLATE.w * k, h: PLATE.h * k };
    t.diagnostic(`plate ${JSON.stringify(plate)}; text boxes ${JSON.stringify(dets.map((d) => d.box))}`);
    assert.ok(dets.some((d) => {
      const cx = d.box.x + d.box.w / 2, cy = d.box.y + d.box.h / 2;
      return cx > plate.x && cx < plate.x + plate.w && cy > plate.y && cy < plate.y + plate.h;
    }), 'the text model finds the plate on the small crop');
  } finally {
    await detector.close();
  }
});
