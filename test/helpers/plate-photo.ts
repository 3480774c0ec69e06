/**
 * licenseplate_motion.jpg (600x482, a motion-blurred plate the text model does not read), its plate
 * area, and the measure the plate tests use for "hidden": the area's edge energy.
 */
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import type { PixelRect } from '../../agent/src/privacy/redactor.js';
import type { Detection, RgbImage } from '../../agent/src/types.js';

export const PLATE_PHOTO = 'assets/images/licenseplate_motion.jpg';
export const TEXT_MODEL = 'assets/models/ppocr-det/model.onnx';
export const COCO_MODEL = 'assets/models/coco-centernet/model.onnx';
/** The plate in licenseplate_motion.jpg (600x482), measured by eye on the photo. */
export const PLATE: PixelRect = { x: 228, y: 222, w: 132, h: 76 };

/** Sum of squared horizontal and vertical differences of luma over `r`. */
export function edgeEnergy(img: RgbImage, r: PixelRect): number {
  const luma = (x: number, y: number) => {
    const p = (y * img.width + x) * 3;
    return 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2];
  };
  let e = 0;
  for (let y = r.y; y < r.y + r.h - 1; y++) {
    for (let x = r.x; x < r.x + r.w - 1; x++) {
      const c = luma(x, y);
      e += (luma(x + 1, y) - c) ** 2 + (luma(x, y + 1) - c) ** 2;
    }
  }
  return e;
}

/**
 * Vehicle boxes from the main COCO detector when `assets/models/coco-centernet` is installed;
 * otherwise the whole image is the car's box (on the plate photo the car fills it).
 */
export async function vehiclesIn(img: RgbImage): Promise<{ vehicles: Detection[]; from: string }> {
  if (existsSync(COCO_MODEL) && existsSync(COCO_MODEL.replace(/\.onnx$/, '.meta.json'))) {
    const coco = await Detector.open({ modelPath: COCO_MODEL, intraOpThreads: 1 });
    try {
      const vehicles = (await coco.detect(img)).filter((d) => ['car', 'bus', 'truck', 'motorcycle'].includes(d.label));
      if (vehicles.length > 0) return { vehicles, from: COCO_MODEL };
    } finally {
      await coco.close();
    }
  }
  return { vehicles: [{ classId: 2, label: 'car', score: 1, box: { x: 0, y: 0, w: img.width, h: img.height } }], from: 'the whole photo (no COCO model installed or no vehicle found)' };
}

/** The photo with a sharp, high-contrast plate drawn with SVG text and composited over its own plate. */
export async function withSyntheticPlate(img: RgbImage): Promise<RgbImage> {
  const { x, y, w, h } = PLATE;
  const svg = `<svg width="${w}" height="${h}"><rect width="${w}" height="${h}" fill="white" stroke="black" stroke-width="3"/>` +
    `<text x="8" y="${h * 0.68}" font-size="${h * 0.5}" font-family="DejaVu Sans Mono, monospace" font-weight="bold" fill="black">KA 4821</text></svg>`;
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: x, top: y }]).removeAlpha().raw().toBuffer();
  return { width: img.width, height: img.height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}
