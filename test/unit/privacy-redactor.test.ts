import { test } from 'node:test';
import assert from 'node:assert/strict';
import { padRegion, redactImage, blurWholeImage } from '../../agent/src/privacy/redactor.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { RgbImage } from '../../agent/src/types.js';

/** A checkerboard of 4 px cells: maximal edges everywhere. */
function checker(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(((x >> 2) + (y >> 2)) % 2 ? 255 : 0, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

function variance(img: RgbImage, r: { x: number; y: number; w: number; h: number }): number {
  let s = 0, s2 = 0, n = 0;
  for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) { const v = img.data[(y * img.width + x) * 3]; s += v; s2 += v * v; n++; }
  return s2 / n - (s / n) ** 2;
}

test('padRegion pads by a fraction, rounds outwards and clips to the image', () => {
  assert.deepEqual(padRegion({ x: 10.5, y: 10, w: 20, h: 10 }, 0.5, 100, 100), { x: 0, y: 5, w: 41, h: 20 });
  assert.deepEqual(padRegion({ x: 90, y: 90, w: 20, h: 20 }, 0, 100, 100), { x: 90, y: 90, w: 10, h: 10 });
  assert.equal(padRegion({ x: 200, y: 0, w: 10, h: 10 }, 0.1, 100, 100), undefined);
});

for (const method of ['blur', 'pixelate'] as const) {
  test(`${method} flattens the padded region and leaves every other byte unchanged`, async () => {
    const img = checker(160, 120);
    const copy = new Uint8Array(img.data);
    const spec = parsePrivacyConfig({ redaction: { method, paddingFrac: 0.25 } }).redaction;
    const { image: out, rects } = await redactImage(img, [{ x: 40, y: 40, w: 40, h: 40 }], spec);
    assert.deepEqual(rects, [{ x: 30, y: 30, w: 60, h: 60 }]);
    assert.deepEqual(img.data, copy, 'the input image was modified');
    const inner = { x: 40, y: 40, w: 40, h: 40 };
    assert.ok(variance(out, inner) < 0.05 * variance(img, inner), `${method}: variance ${variance(out, inner)} vs ${variance(img, inner)}`);
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
      if (x >= 30 && x < 90 && y >= 30 && y < 90) continue;
      const p = (y * img.width + x) * 3;
      if (out.data[p] !== img.data[p] || out.data[p + 1] !== img.data[p + 1] || out.data[p + 2] !== img.data[p + 2]) assert.fail(`pixel (${x}, ${y}) outside the region changed`);
    }
  });
}

test('blurWholeImage hides a large image in bounded time', async () => {
  const img = checker(1280, 720);
  const t0 = performance.now();
  const out = await blurWholeImage(img, parsePrivacyConfig({}).redaction);
  const ms = performance.now() - t0;
  assert.ok(variance(out, { x: 100, y: 100, w: 1000, h: 500 }) < 0.01 * variance(img, { x: 100, y: 100, w: 1000, h: 500 }));
  // About 0.2 s here; the bound catches a pathological blur (seconds per frame), not a loaded machine.
  assert.ok(ms < 5000, `blur-all took ${ms.toFixed(0)} ms`);
});

test('a buffer of the wrong size is an InputError', async () => {
  await assert.rejects(redactImage({ width: 10, height: 10, data: new Uint8Array(10) }, [], parsePrivacyConfig({}).redaction), { code: 'E_INPUT' });
});

// A detailed 1920-px frame at quality 90 came to 429 KiB of JPEG, over the 360 KiB an alert carries:
// the whole alert was refused ("alert not queued"), not just its picture.
test('a snapshot over what an alert carries is encoded again smaller until it fits', async () => {
  const { encodeJpeg } = await import('../../agent/src/privacy/redactor.js');
  const { SNAPSHOT_MAX_JPEG_BYTES } = await import('../../agent/src/protocol/payloads.js');
  const width = 1920, height = 1080;
  const data = new Uint8Array(width * height * 3);
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = ((i / 3) % width) / 8 + (seed >>> 24) / 2;
  }
  const image = { width, height, data };
  const plain = await encodeJpeg(image, 90, 1920);
  assert.ok(plain.jpeg.length > SNAPSHOT_MAX_JPEG_BYTES, `the test image must be too big at quality 90 (${plain.jpeg.length} bytes)`);
  const fitted = await encodeJpeg(image, 90, 1920, SNAPSHOT_MAX_JPEG_BYTES);
  assert.ok(fitted.jpeg.length <= SNAPSHOT_MAX_JPEG_BYTES, `${fitted.jpeg.length} bytes`);
  assert.equal(fitted.jpeg[0], 0xff);
  assert.equal(Math.round(fitted.width / fitted.height * 100), Math.round(width / height * 100), 'aspect ratio kept');
  const small = await encodeJpeg({ width: 64, height: 48, data: new Uint8Array(64 * 48 * 3).fill(90) }, 85, 1280, SNAPSHOT_MAX_JPEG_BYTES);
  assert.deepEqual([small.width, small.height], [64, 48], 'a JPEG that fits is left as it is');
});
