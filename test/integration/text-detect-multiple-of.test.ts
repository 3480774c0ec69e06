/**
 * preprocess.multipleOf with the real PP-OCR text detector: its feature pyramid adds maps upsampled
 * by 2, so an input side that is not a multiple of 32 fails inside the model (600 → "75 by 76").
 * A user who sets width/height 600 gets a 608×608 input, the frame letterboxed into it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import { planTransform, preprocess } from '../../agent/src/preprocess/preprocess.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import type { RgbImage } from '../../agent/src/types.js';

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
