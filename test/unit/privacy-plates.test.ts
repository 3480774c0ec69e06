import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlateFinder, plateBand } from '../../agent/src/privacy/plates.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Detection, RgbImage } from '../../agent/src/types.js';

const image: RgbImage = { width: 200, height: 100, data: new Uint8Array(200 * 100 * 3) };
const det = (label: string, x: number, w = 60, score = 0.9): Detection => ({ classId: 0, label, score, box: { x, y: 10, w, h: 60 } });

test('plateBand takes the configured fractions of the vehicle box', () => {
  assert.deepEqual(plateBand({ x: 100, y: 50, w: 200, h: 100 }, { top: 0.5, bottom: 1, left: 0.1, right: 0.9 }), { x: 120, y: 100, w: 160, h: 50 });
});

test('only vehicles are searched; text boxes are offset into the frame and widened by the margin', async () => {
  const seen: Array<[number, number]> = [];
  const text = { detect: async (crop: RgbImage) => { seen.push([crop.width, crop.height]); return [{ classId: 0, label: 'text', score: 0.8, box: { x: 10, y: 40, w: 30, h: 10 } }]; } };
  const spec = parsePrivacyConfig({ plates: { textMarginFrac: 0.5 } }).plates;
  const regions = await new PlateFinder({ spec, textDetector: text }).find(image, [det('person', 0), det('car', 100)]);
  assert.deepEqual(seen, [[60, 60]]);
  assert.deepEqual(regions, [{ kind: 'plate', source: 'text-model', score: 0.8, box: { x: 105, y: 45, w: 40, h: 20 } }]);
});

test('fallback policies: no text found → band (no-text); no model → band (no-model); never → nothing', async () => {
  const none = { detect: async () => [] };
  const base = parsePrivacyConfig({}).plates;
  const car = [det('car', 100)];
  assert.deepEqual((await new PlateFinder({ spec: base, textDetector: none }).find(image, car)).map((r) => r.source), ['band']);
  assert.deepEqual((await new PlateFinder({ spec: { ...base, fallback: 'no-model' }, textDetector: none }).find(image, car)), []);
  assert.deepEqual((await new PlateFinder({ spec: { ...base, fallback: 'no-model' } }).find(image, car)).map((r) => r.source), ['band']);
  assert.deepEqual((await new PlateFinder({ spec: { ...base, fallback: 'never' } }).find(image, car)), []);
});

test('text runs are capped per frame, largest vehicle first; the rest get the band', async () => {
  let runs = 0;
  const text = { detect: async () => { runs++; return [{ classId: 0, label: 'text', score: 0.8, box: { x: 1, y: 1, w: 10, h: 5 } }]; } };
  const spec = { ...parsePrivacyConfig({}).plates, maxTextRuns: 1, fallback: 'no-model' as const };
  const regions = await new PlateFinder({ spec, textDetector: text }).find(image, [det('car', 0, 40), det('truck', 100, 80)]);
  assert.equal(runs, 1);
  assert.deepEqual(regions.map((r) => r.source), ['text-model', 'band']);
  assert.equal(regions[0].box.x, 100 + 1 - 2.5, 'the text model ran on the larger vehicle (x 100), margin 0.5 × 5 px');
});
