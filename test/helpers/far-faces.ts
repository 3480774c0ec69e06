/**
 * People far from the camera in a 1080p frame: sample1 scaled down and pasted onto a grey 1920×1080
 * frame, with the faces the real BlazeFace finds on the full-size photo as ground truth.
 */
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { Detector } from '../../agent/src/infer/detector.js';
import type { Box } from '../../agent/src/types.js';

export const FACE_MODEL = 'assets/models/blazeface-back/model.onnx';
export const FACE_PHOTO = 'assets/images/faces/sample1.jpg';

/** Why the far-faces tests cannot run here, or undefined when BlazeFace and the photo are present. */
export function farFacesMissing(): string | undefined {
  if (!existsSync(FACE_PHOTO) || !existsSync(FACE_MODEL.replace(/\.onnx$/, '.meta.json'))) return 'BlazeFace or the face photos are missing: run scripts/setup.sh';
  return undefined;
}

export interface FarFaces {
  /** The faces found on the full-size photo, in its pixels. */
  gt: Box[];
  /** Scale from the full-size photo to `small`. */
  k: number;
  /** The photo scaled to `width` px wide, raw RGB. */
  small: { data: Buffer; info: sharp.OutputInfo };
}

export async function farFaces(width: number): Promise<FarFaces> {
  const full = await sharp(FACE_PHOTO).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const gtModel = await Detector.open({ modelPath: FACE_MODEL, scoreThreshold: 0.5, intraOpThreads: 1 });
  const gt = (await gtModel.detect({ width: full.info.width, height: full.info.height, data: new Uint8Array(full.data) })).map((d) => d.box);
  await gtModel.close();
  const small = await sharp(FACE_PHOTO).resize(width).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { gt, k: width / full.info.width, small };
}

/** A grey 1920×1080 RGB frame with `small` pasted at (left, top). */
export async function frameWith(small: FarFaces['small'], left: number, top: number): Promise<Uint8Array> {
  const buf = await sharp({ create: { width: 1920, height: 1080, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .composite([{ input: small.data, raw: { width: small.info.width, height: small.info.height, channels: 3 }, left, top }]).removeAlpha().raw().toBuffer();
  return new Uint8Array(buf);
}
