/**
 * Under the default plate fallback (`no-text`) the band of a vehicle is hidden unless the text model
 * found text in that band: text elsewhere on the vehicle (a sticker on the rear window, taxi lettering
 * on the roof) says nothing about a plate too blurred for the text model to see.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlateFinder, plateBand } from '../../agent/src/privacy/plates.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { Box, Detection, RgbImage } from '../../agent/src/types.js';

const image: RgbImage = { width: 400, height: 300, data: new Uint8Array(400 * 300 * 3) };
const car: Detection = { classId: 2, label: 'car', score: 0.9, box: { x: 100, y: 50, w: 200, h: 200 } };
/** A text detector that finds one text box (in the vehicle crop's pixels). */
const textAt = (box: Box) => ({ detect: async () => [{ classId: 0, label: 'text', score: 0.9, box }] });

test('no-text: text high on the vehicle (a sticker on the rear window) is hidden and the band is hidden too', async () => {
  const spec = parsePrivacyConfig({}).plates;
  const regions = await new PlateFinder({ spec, textDetector: textAt({ x: 50, y: 20, w: 100, h: 20 }) }).find(image, [car]);
  assert.deepEqual(regions.map((r) => r.source).sort(), ['band', 'text-model']);
  assert.deepEqual(regions.find((r) => r.source === 'band')?.box, plateBand(car.box, spec.band));
});

test('no-text: text found in the band stands for the plate, and no band is added', async () => {
  const spec = parsePrivacyConfig({}).plates;
  const regions = await new PlateFinder({ spec, textDetector: textAt({ x: 70, y: 150, w: 60, h: 20 }) }).find(image, [car]);
  assert.deepEqual(regions.map((r) => r.source), ['text-model']);
});
