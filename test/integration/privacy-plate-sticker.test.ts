/**
 * licenseplate_motion.jpg with "ACME TAXI" pasted on the rear window: the text model reads the
 * sticker but not the motion-blurred plate. The plate must still be hidden (the band fallback);
 * text that turned the band off used to leave it as sharp as before, with only the sticker blurred.
 * "Hidden" = the plate area's edge energy drops by at least 80%, as in privacy-plates.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import { readImageFile } from '../../agent/src/preprocess/preprocess.js';
import { PlateFinder } from '../../agent/src/privacy/plates.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { redactImage, type PixelRect } from '../../agent/src/privacy/redactor.js';
import type { RgbImage } from '../../agent/src/types.js';
import { PLATE, PLATE_PHOTO as PHOTO, TEXT_MODEL, edgeEnergy, vehiclesIn } from '../helpers/plate-photo.js';

/** The sticker on the rear window. */
const STICKER: PixelRect = { x: 170, y: 70, w: 260, h: 50 };

async function withSticker(img: RgbImage): Promise<RgbImage> {
  const { x, y, w, h } = STICKER;
  const svg = `<svg width="${img.width}" height="${img.height}" xmlns="http://www.w3.org/2000/svg"><rect x="${x}" y="${y}" width="${w}" height="${h}" fill="white"/>` +
    `<text x="${x + 10}" y="${y + 40}" font-family="DejaVu Sans, sans-serif" font-size="40" font-weight="bold" fill="black">ACME TAXI</text></svg>`;
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }]).removeAlpha().raw().toBuffer();
  return { width: img.width, height: img.height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}

test('plates: a sticker the text model reads does not leave the motion-blurred plate unhidden', async (t) => {
  if (!existsSync(PHOTO) || !existsSync(TEXT_MODEL.replace(/\.onnx$/, '.meta.json'))) { t.skip('the plate photo or the PP-OCR model is missing: run scripts/setup.sh'); return; }
  const config = parsePrivacyConfig({});
  const photo = await withSticker(await readImageFile(PHOTO));
  const { vehicles } = await vehiclesIn(photo);
  const text = await Detector.open({ modelPath: TEXT_MODEL, intraOpThreads: 1 });
  try {
    const regions = await new PlateFinder({ spec: config.plates, textDetector: text }).find(photo, vehicles);
    t.diagnostic(`vehicles ${JSON.stringify(vehicles.map((v) => v.box))}; regions ${JSON.stringify(regions.map((r) => r.source))}`);
    const out = (await redactImage(photo, regions, config.redaction)).image;
    for (const [name, area] of [['sticker', STICKER], ['plate', PLATE]] as const) {
      const drop = 1 - edgeEnergy(out, area) / edgeEnergy(photo, area);
      t.diagnostic(`${name} edge energy drop ${(drop * 100).toFixed(1)}%`);
      assert.ok(drop >= 0.8, `the ${name} is not hidden: its edge energy dropped by only ${(drop * 100).toFixed(1)}%`);
    }
  } finally {
    await text.close();
  }
});
