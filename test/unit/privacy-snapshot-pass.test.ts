/**
 * The face tiles run where an image leaves, not on every frame: the privacy stage ran the face
 * model on the whole frame and on each auto tile for every frame (9 runs at 1080p: 13 → 118 ms a
 * frame, which a 1080p camera lost from its frame rate on every box with a fleet link). Now
 * observe() runs it once per due frame and submit() runs the tiles on the image itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig, type PrivacyConfig } from '../../agent/src/privacy/schema.js';
import { TiledDetector } from '../../agent/src/privacy/tiles.js';
import type { ImageDetector } from '../../agent/src/privacy/plates.js';
import type { Detection, Frame, RgbImage } from '../../agent/src/types.js';

const W = 1920, H = 1080;
/** A 35-px face at (1000, 300), painted in a value nothing else has (200). */
const FACE = { x: 1000, y: 300, w: 35, h: 35 };
const FACE_VALUE = 200;
const data = new Uint8Array(W * H * 3).fill(90);
for (let y = FACE.y; y < FACE.y + FACE.h; y++) data.fill(FACE_VALUE, (y * W + FACE.x) * 3, (y * W + FACE.x + FACE.w) * 3);
const frame = (index: number): Frame => ({ width: W, height: H, data, index, ptsNs: index * 33_333_333, capturedAtNs: 0, sourceId: 'cam' });
const person: Detection = { classId: 0, label: 'person', score: 0.9, box: { x: 985, y: 290, w: 70, h: 200 } };

/**
 * A stand-in face model that counts its runs and, as BlazeFace does with a 35-px face in a 1080p
 * frame, finds the face in a tile that holds it but not in the whole frame (4 px in its input).
 */
function faceModel(opts: { failOnTiles?: boolean } = {}): ImageDetector & { runs: number } {
  const model = {
    runs: 0,
    async detect(img: RgbImage): Promise<Detection[]> {
      model.runs++;
      if (img.width === W && img.height === H) return [];
      if (opts.failOnTiles) throw new Error('face model worker exited');
      let x1 = Infinity, y1 = Infinity, x2 = -1, y2 = -1;
      for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
        if (img.data[(y * img.width + x) * 3] !== FACE_VALUE) continue;
        x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
      }
      // A face cut by the tile's edge is not found; the overlapping neighbour holds it whole.
      if (x2 - x1 !== FACE.w || y2 - y1 !== FACE.h) return [];
      return [{ classId: 0, label: 'face', score: 0.9, box: { x: x1, y: y1, w: FACE.w, h: FACE.h } }];
    },
  };
  return model;
}

/** The stage wired as PrivacyDetector.open wires it (auto tiles for a 256-px model, head bands). */
async function stageWith(config: PrivacyConfig, model: ImageDetector): Promise<PrivacyStage> {
  const stage = new PrivacyStage({
    config, sink: () => undefined,
    createDetector: (deps) => new PrivacyDetector({ ...deps, faces: new TiledDetector(model, config.faces.tiles, undefined, 256), faceScoreThreshold: config.faces.scoreThreshold, headBand: config.faces.headBand }),
  });
  await stage.start();
  return stage;
}

const foundFaces = (regions: readonly { kind: string; source: string; box: { x: number; y: number; w: number; h: number } }[]) =>
  regions.filter((r) => r.kind === 'face' && r.source === 'face-model').map((r) => r.box);

test('observe() runs the face model once per due frame; submit() runs the tiles on the image that leaves', async () => {
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const model = faceModel();
  const stage = await stageWith(config, model);
  for (let i = 0; i < 4; i++) assert.equal(await stage.observe(frame(i), []), true);
  assert.equal(model.runs, 4, 'one face model run per frame on the frame path');
  const out = await stage.submit(frame(3), 'alert-snapshot');
  assert.ok(out.released);
  // The small face, seen only in tiles, is among the regions hidden in the snapshot.
  assert.deepEqual(foundFaces(out.image.regions), [FACE]);
  assert.ok(model.runs > 5, 'the snapshot got the whole frame and its tiles');
  await stage.stop();
});

test('with everyNFrames 3 the frame path runs the model on every third frame only, once', async () => {
  const config = parsePrivacyConfig({ everyNFrames: 3, plates: { enabled: false } });
  const model = faceModel();
  const stage = await stageWith(config, model);
  for (let i = 0; i < 9; i++) await stage.observe(frame(i), []);
  assert.equal(model.runs, 3);
  await stage.stop();
});

test('head bands are judged in the snapshot, against the faces its tiles found', async () => {
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  // A person whose face the tiles find gets no band (the whole frame alone would have given one).
  const stage = await stageWith(config, faceModel());
  await stage.observe(frame(0), [person]);
  const found = await stage.submit(frame(0), 'alert-snapshot');
  assert.ok(found.released);
  assert.deepEqual(found.image.regions.map((r) => r.source).filter((s) => s === 'band'), [], JSON.stringify(found.image.regions));
  assert.deepEqual(foundFaces(found.image.regions), [FACE]);
  await stage.stop();
  // A person whose face no pass finds gets the band in the snapshot, from the boxes observe() was given with that frame.
  const none = await stageWith(config, { detect: async () => [] });
  await none.observe(frame(0), [person]);
  const banded = await none.submit(frame(0), 'alert-snapshot');
  assert.ok(banded.released);
  assert.deepEqual(banded.image.regions.map((r) => [r.kind, r.source]), [['face', 'band']]);
  await none.stop();
});

test('a snapshot whose own detection fails is withheld (fails closed)', async () => {
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const stage = await stageWith(config, faceModel({ failOnTiles: true }));
  assert.equal(await stage.observe(frame(0), []), true);
  const out = await stage.submit(frame(0), 'alert-snapshot');
  assert.deepEqual([out.released, !out.released && out.reason], [false, 'failed']);
  // The next frame's run succeeds and clears the failure; its snapshot fails closed again.
  assert.equal(await stage.observe(frame(1), []), true);
  const next = await stage.submit(frame(1), 'alert-snapshot');
  assert.equal(next.released, false);
  await stage.stop();
});

test('an image the per-frame runs do not cover is withheld without running the tiles', async () => {
  const config = parsePrivacyConfig({ plates: { enabled: false }, gate: { maxAgeMs: 100 } });
  const model = faceModel();
  const stage = await stageWith(config, model);
  const never = await stage.submit(frame(0), 'alert-snapshot');
  assert.deepEqual([never.released, !never.released && never.reason], [false, 'never']);
  await stage.observe(frame(0), []);
  const stale = await stage.submit(frame(30), 'alert-snapshot'); // 1 s after the only run
  assert.deepEqual([stale.released, !stale.released && stale.reason], [false, 'stale']);
  assert.equal(model.runs, 1);
  await stage.stop();
});
