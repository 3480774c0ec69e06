/**
 * A typical site: a 1920×1080 frame with people far from the camera (sample1 scaled to 400 px wide,
 * faces of 36-39 px). With the default privacy config every face must be found; the whole-frame
 * pass alone (the old default 1×1) shrank them to ~5 px in the 256-px model input and missed some,
 * and the frame was released as covered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { padRegion } from '../../agent/src/privacy/redactor.js';
import { farFaces, farFacesMissing, frameWith } from '../helpers/far-faces.js';

test('default config: small faces in a 1080p frame are all found (auto tiles)', async (t) => {
  const missing = farFacesMissing();
  if (missing) { t.skip(missing); return; }
  // Ground truth: the faces found on the full-size photo.
  const { gt, k, small } = await farFaces(400);
  assert.ok(gt.length >= 3, 'expected the faces of sample1 as ground truth');
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const det = await PrivacyDetector.open(config, { intraOpThreads: 1 });
  try {
    for (const [ox, oy] of [[600, 300], [621, 307], [687, 329]]) {
      const regions = await det.run({ width: 1920, height: 1080, data: await frameWith(small, ox, oy) }, []);
      const rects = regions.map((r) => padRegion(r.box, config.redaction.paddingFrac, 1920, 1080)).filter((r) => r !== undefined);
      for (const g of gt) {
        const b = { x: g.x * k + ox, y: g.y * k + oy, w: g.w * k, h: g.h * k };
        const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
        const hidden = rects.some((r) => r.x <= b.x && r.y <= b.y && r.x + r.w >= b.x + b.w && r.y + r.h >= b.y + b.h);
        assert.ok(hidden, `at +${ox},+${oy} the ${b.w.toFixed(0)}-px face at (${cx.toFixed(0)}, ${cy.toFixed(0)}) is not hidden (${regions.length} regions)`);
      }
    }
  } finally {
    await det.close();
  }
});
