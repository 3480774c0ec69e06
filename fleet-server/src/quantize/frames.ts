/**
 * Calibration / evaluation frames from a directory of images or a video file, preprocessed exactly
 * as the agent does it (agent/src/preprocess: same resize, layout and normalisation from the model's
 * metadata). Frames are yielded one at a time; nothing is buffered.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { RgbImage } from '../../../agent/src/types.js';
import type { PreprocessSpec } from '../../../agent/src/model/metadata.js';
import { preprocess, readImageFile, type ModelInput } from '../../../agent/src/preprocess/preprocess.js';
import { videoFileFrames } from '../../../agent/src/capture/file-frames.js';
import { InputError } from '../../../agent/src/util/errors.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export interface FrameSelection {
  /** Path of an image directory or a video file. */
  source: string;
  maxFrames: number;
  /** Take every `stride`-th frame of a video (default 10) or image of a directory (default 1), starting at `offset`. */
  stride?: number;
  offset?: number;
  /** Video only, when no offset is given: start half a stride in, so evaluation frames differ from calibration frames. */
  heldOut?: boolean;
}

export interface SourceFrame {
  index: number;
  image: RgbImage;
}

/**
 * Decoded frames of a selection, kept for the next pass over the same selection object: preparing an
 * INT8 build reads its calibration frames up to six times (prepare.ts, then calibrate), and decoding
 * a strided selection of a video was most of each pass (3 frames at stride 150 of vtest.avi: ~1.5 s a
 * pass, ~7 s of a 26 s CenterNet INT8 TFLite export on an AVX2 EPYC). Kept only up to
 * REPLAY_MAX_BYTES of pixels (then every pass decodes again, as before), only once a pass has read
 * the whole selection, and only while the selection object lives (a WeakMap): a selection spread
 * into a new object (`{ ...sel, maxFrames: 2 }`) decodes afresh.
 */
const replays = new WeakMap<FrameSelection, { key: string; frames: SourceFrame[] | 'too large' }>();
const REPLAY_MAX_BYTES = 256 * 1024 * 1024;

export async function* sourceFrames(sel: FrameSelection): AsyncGenerator<SourceFrame> {
  // The selection as it was read: a replay is used only if the object was not changed since.
  const key = JSON.stringify([sel.source, sel.maxFrames, sel.stride, sel.offset, sel.heldOut]);
  const entry = replays.get(sel);
  const replay = entry?.key === key ? entry.frames : undefined;
  if (Array.isArray(replay)) {
    yield* replay;
    return;
  }
  let keep: SourceFrame[] | undefined = replay === 'too large' ? undefined : [];
  let bytes = 0;
  const kept = (f: SourceFrame): SourceFrame => {
    if (!keep) return f;
    bytes += f.image.data.byteLength;
    if (bytes > REPLAY_MAX_BYTES) keep = undefined;
    else keep.push(f);
    return f;
  };
  // Reached only when the whole selection was read: a consumer that stops early leaves nothing kept.
  const done = () => replays.set(sel, { key, frames: keep ?? 'too large' });
  let st;
  try {
    st = await stat(sel.source);
  } catch (err) {
    throw new InputError(`Expected an image directory or a video file for frames but ${sel.source} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let taken = 0;
  const dir = st.isDirectory();
  const stride = Math.max(1, sel.stride ?? (dir ? 1 : 10));
  const offset = Math.max(0, sel.offset ?? (!dir && sel.heldOut ? Math.floor(stride / 2) : 0));
  if (dir) {
    const names = (await readdir(sel.source)).filter((n) => IMAGE_EXT.has(extname(n).toLowerCase())).sort();
    if (names.length === 0) throw new InputError(`Expected JPEG/PNG/WebP images in ${sel.source} but found none`);
    for (let i = offset; i < names.length && taken < sel.maxFrames; i += stride) {
      yield kept({ index: i, image: await readImageFile(join(sel.source, names[i])) });
      taken++;
    }
    done();
    return;
  }
  const ac = new AbortController();
  try {
    for await (const f of videoFileFrames({ path: sel.source, signal: ac.signal })) {
      if (f.index < offset || (f.index - offset) % stride !== 0) continue;
      yield kept({ index: f.index, image: { width: f.width, height: f.height, data: f.data } });
      taken++;
      if (taken >= sel.maxFrames) break;
    }
    done();
  } catch (err) {
    // The agent's capture speaks of cameras; here the file is the operator's frames option.
    if ((err as { code?: string }).code !== 'E_CAPTURE') throw err;
    throw new InputError(`Expected a video file GStreamer can decode (or an image directory) for frames but ${sel.source} is not one: ${(err as Error).message}`, { cause: err });
  } finally {
    ac.abort();
  }
}

export async function* modelInputs(sel: FrameSelection, spec: PreprocessSpec): AsyncGenerator<ModelInput & { index: number; image: RgbImage }> {
  for await (const f of sourceFrames(sel)) yield { ...(await preprocess(f.image, spec)), index: f.index, image: f.image };
}
