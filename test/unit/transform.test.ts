import { test } from 'node:test';
import assert from 'node:assert/strict';
import { letterboxTransform, boxToSource, boxToModel, stretchTransform } from '../../agent/src/preprocess/transform.js';

test('letterbox of 768x576 into 640x640 keeps aspect ratio and centres vertically', () => {
  const t = letterboxTransform({ srcWidth: 768, srcHeight: 576, dstWidth: 640, dstHeight: 640 });
  assert.equal(t.contentWidth, 640);
  assert.equal(t.contentHeight, 480);
  assert.equal(t.padX, 0);
  assert.equal(t.padY, 80);
});

test('letterbox round trip maps boxes back to source pixels within a pixel', () => {
  for (const [sw, sh] of [[768, 576], [1920, 1080], [333, 777], [256, 256]] as const) {
    const t = letterboxTransform({ srcWidth: sw, srcHeight: sh, dstWidth: 512, dstHeight: 320 });
    const box = { x: sw * 0.1, y: sh * 0.2, w: sw * 0.3, h: sh * 0.4 };
    const back = boxToSource(t, boxToModel(t, box));
    for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(back[k] - box[k]) < 1e-6, `${k}: ${back[k]} vs ${box[k]}`);
  }
});

test('boxes outside the content area are clipped to the source frame', () => {
  const t = letterboxTransform({ srcWidth: 768, srcHeight: 576, dstWidth: 640, dstHeight: 640 });
  const b = boxToSource(t, { x: -10, y: 0, w: 100, h: 100 });
  assert.equal(b.x, 0);
  assert.equal(b.y, 0);
  assert.ok(b.h <= 576);
});

test('stretch uses independent scales per axis', () => {
  const t = stretchTransform({ srcWidth: 1000, srcHeight: 500, dstWidth: 100, dstHeight: 100 });
  assert.deepEqual(boxToSource(t, { x: 10, y: 10, w: 10, h: 10 }), { x: 100, y: 50, w: 100, h: 50 });
});
