/**
 * Licence plates: the text detector (PP-OCR DB) runs on each vehicle crop from the main detector
 * (car, bus, truck, motorcycle by default), and every text region inside a vehicle is a plate
 * candidate — hiding a badge too is a cheap mistake, missing a plate is not. When there is no text
 * model, or it found no text in the lower band of a vehicle (policy `fallback`), that band is hidden
 * as well: plates sit in the lower part of a vehicle seen from the front or back. Text elsewhere on
 * the vehicle (a sticker on the rear window, taxi lettering on the roof) says nothing about the
 * plate, which may be too blurred for the text model to see.
 */
import sharp from 'sharp';
import type { Box, Detection, RgbImage } from '../types.js';
import type { PlatePrivacySpec } from './schema.js';
import type { PrivacyRegion } from './coverage.js';

/** Anything that finds boxes in an RGB image (the agent's Detector satisfies it). */
export interface ImageDetector {
  detect(image: RgbImage): Promise<Detection[]>;
}

export interface PlateFinderOptions {
  spec: PlatePrivacySpec;
  /** The text detector; absent when no text model is installed. */
  textDetector?: ImageDetector;
}

export class PlateFinder {
  constructor(private readonly opts: PlateFinderOptions) {}

  get hasTextModel(): boolean {
    return this.opts.textDetector !== undefined;
  }

  /** Plate regions in source pixels for the vehicles among `detections`. */
  async find(image: RgbImage, detections: readonly Detection[]): Promise<PrivacyRegion[]> {
    const { spec, textDetector } = this.opts;
    if (!spec.enabled) return [];
    const candidates = detections.filter((d) => spec.vehicleLabels.includes(d.label) && (d.score >= spec.minVehicleScore || !Number.isFinite(d.score)));
    // A vehicle box that cannot be placed (NaN from a broken decoder, an empty or negative size), or
    // whose score is not a number (which fails every threshold), says nothing of where its plate is.
    // It is passed on as a region as it is, which the redactor refuses (redactor.ts), so the gate
    // withholds the image (reason redaction-error), as for such a face box; the filters here dropped
    // it, and the image left as redacted with the plate in it.
    const regions: PrivacyRegion[] = candidates.filter((d) => !placeable(d.box) || !Number.isFinite(d.score))
      .map((d) => ({ kind: 'plate', source: 'band', score: d.score, box: d.box, paddingFrac: 0 }));
    const vehicles = candidates.filter((d) => placeable(d.box) && Number.isFinite(d.score) && Math.min(d.box.w, d.box.h) >= spec.minVehicleSizePx)
      .sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
    let textRuns = 0;
    for (const v of vehicles) {
      const crop = clipBox(v.box, image.width, image.height);
      if (!crop) continue;
      let found: PrivacyRegion[] = [];
      const runText = textDetector !== undefined && textRuns < spec.maxTextRuns;
      if (textDetector && runText) {
        textRuns++;
        const texts = await textDetector.detect(await cropRgb(image, crop));
        found = texts.map((t) => {
          const m = t.box.h * spec.textMarginFrac;
          return { kind: 'plate' as const, source: 'text-model' as const, score: t.score, box: { x: t.box.x + crop.x - m, y: t.box.y + crop.y - m, w: t.box.w + 2 * m, h: t.box.h + 2 * m } };
        });
      }
      regions.push(...found);
      const band = plateBand(crop, spec.band);
      // Past the text-run cap a vehicle is treated as if there were no text model. Under `no-text`
      // only text centred in the band stands for the plate; any other text (a sticker, a badge) left
      // a motion-blurred plate unhidden when it turned the band off.
      const useBand = spec.fallback === 'always' || (spec.fallback === 'no-model' && !runText)
        || (spec.fallback === 'no-text' && !found.some((r) => centreInside(r.box, band)));
      if (useBand) regions.push({ kind: 'plate', source: 'band', score: v.score, box: band, paddingFrac: 0 });
    }
    return regions;
  }
}

/** The configured lower band of a vehicle box. */
export function plateBand(vehicle: Box, band: PlatePrivacySpec['band']): Box {
  const top = Math.min(band.top, band.bottom), bottom = Math.max(band.top, band.bottom);
  const left = Math.min(band.left, band.right), right = Math.max(band.left, band.right);
  return { x: vehicle.x + vehicle.w * left, y: vehicle.y + vehicle.h * top, w: vehicle.w * (right - left), h: vehicle.h * (bottom - top) };
}

/** Finite, with a positive width and height: what the redactor can hide. */
function placeable(b: Box): boolean {
  return [b.x, b.y, b.w, b.h].every(Number.isFinite) && b.w > 0 && b.h > 0;
}

function centreInside(b: Box, area: Box): boolean {
  const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
  return cx >= area.x && cx <= area.x + area.w && cy >= area.y && cy <= area.y + area.h;
}

function clipBox(b: Box, width: number, height: number): { x: number; y: number; w: number; h: number } | undefined {
  const x1 = Math.max(0, Math.floor(b.x)), y1 = Math.max(0, Math.floor(b.y));
  const x2 = Math.min(width, Math.ceil(b.x + b.w)), y2 = Math.min(height, Math.ceil(b.y + b.h));
  return x2 - x1 >= 2 && y2 - y1 >= 2 ? { x: x1, y: y1, w: x2 - x1, h: y2 - y1 } : undefined;
}

async function cropRgb(image: RgbImage, r: { x: number; y: number; w: number; h: number }): Promise<RgbImage> {
  const buf = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract({ left: r.x, top: r.y, width: r.w, height: r.h }).raw().toBuffer();
  return { width: r.w, height: r.h, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}
