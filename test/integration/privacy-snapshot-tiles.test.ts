/**
 * With the real BlazeFace: the privacy stage's frame path runs the face model once per frame (it ran
 * the whole frame and 8 auto tiles on every 1080p frame, 13 → 118 ms a frame), and an alert
 * snapshot of a 1080p frame with faces of 32-39 px (sample1 scaled to 400 px wide, people far from
 * the camera) still goes out with every face hidden: the tiles run on the snapshot itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Detector } from '../../agent/src/infer/detector.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { padRegion } from '../../agent/src/privacy/redactor.js';
import { TiledDetector } from '../../agent/src/privacy/tiles.js';
import type { Frame } from '../../agent/src/types.js';
import { farFaces, farFacesMissing, frameWith } from '../helpers/far-faces.js';

test('1080p: one face model run per frame on the frame path, and the snapshot hides faces of 32-39 px', async (t) => {
  const missing = farFacesMissing();
  if (missing) { t.skip(missing); return; }
  const { gt, k, small } = await farFaces(400);
  assert.ok(gt.length >= 3, 'expected the faces of sample1 as ground truth');

  const config = parsePrivacyConfig({ plates: { enabled: false } });
  // The real face model, as PrivacyDetector.open wires it, with its runs counted.
  const model = await Detector.open({ modelPath: config.faces.modelPath, scoreThreshold: config.faces.scoreThreshold, intraOpThreads: 1 });
  let runs = 0;
  const counted = { detect: (img: Parameters<Detector['detect']>[0]) => { runs++; return model.detect(img); } };
  const input = model.meta.preprocess;
  const stage = new PrivacyStage({
    config, sink: () => undefined,
    createDetector: (deps) => new PrivacyDetector({ ...deps, faces: new TiledDetector(counted, config.faces.tiles, undefined, Math.min(input.width, input.height)), faceScoreThreshold: config.faces.scoreThreshold, headBand: config.faces.headBand }),
  });
  await stage.start();
  try {
    let last: Frame | undefined;
    const [ox, oy] = [621, 307];
    for (let i = 0; i < 3; i++) {
      last = { width: 1920, height: 1080, data: await frameWith(small, ox + 3 * i, oy + i), index: i, ptsNs: i * 33_333_333, capturedAtNs: 0, sourceId: 'cam' };
      assert.equal(await stage.observe(last, []), true);
    }
    assert.equal(runs, 3, 'one face model run per 1080p frame on the frame path');
    const out = await stage.submit(last!, 'alert-snapshot');
    assert.ok(out.released);
    const rects = out.image.regions.map((r) => padRegion(r.box, r.paddingFrac ?? config.redaction.paddingFrac, 1920, 1080)).filter((r) => r !== undefined);
    for (const g of gt) {
      const b = { x: g.x * k + ox + 6, y: g.y * k + oy + 2, w: g.w * k, h: g.h * k };
      const hidden = rects.some((r) => r.x <= b.x && r.y <= b.y && r.x + r.w >= b.x + b.w && r.y + r.h >= b.y + b.h);
      assert.ok(hidden, `the ${b.w.toFixed(0)}-px face at (${(b.x + b.w / 2).toFixed(0)}, ${(b.y + b.h / 2).toFixed(0)}) is not hidden in the snapshot (${out.image.regions.length} regions)`);
    }
  } finally {
    await stage.stop();
    await model.close();
  }
});
