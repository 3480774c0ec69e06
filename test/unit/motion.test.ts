import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MotionGate, greyThumbnail } from '../../agent/src/schedule/motion.js';
import type { RgbImage } from '../../agent/src/types.js';

function image(width: number, height: number, blob?: { x: number; y: number; size: number }): RgbImage {
  const data = new Uint8Array(width * height * 3).fill(90);
  if (blob) {
    for (let y = blob.y; y < blob.y + blob.size; y++) {
      for (let x = blob.x; x < blob.x + blob.size; x++) data.fill(230, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return { width, height, data };
}

test('grey thumbnail keeps the aspect ratio and the grey level', () => {
  const t = greyThumbnail(image(768, 576), 64);
  assert.equal(t.width, 64);
  assert.equal(t.height, 48);
  assert.ok(t.data.every((v) => Math.abs(v - 90) <= 1));
});

test('a still scene is no motion; a person-sized moving blob is', () => {
  const gate = new MotionGate();
  assert.equal(gate.check(image(768, 576)).motion, true, 'first frame counts as motion');
  assert.equal(gate.check(image(768, 576)).motion, false);
  const moved = gate.check(image(768, 576, { x: 300, y: 200, size: 60 }));
  assert.equal(moved.motion, true);
  assert.ok(moved.changedFraction > 0.002 && moved.changedFraction < 0.05, `${moved.changedFraction}`);
});

test('sensor noise below the pixel threshold is not motion', () => {
  const gate = new MotionGate({ pixelThreshold: 20 });
  const a = image(320, 240);
  const b = image(320, 240);
  for (let i = 0; i < b.data.length; i += 7) b.data[i] = 90 + ((i % 3) - 1) * 10;
  gate.check(a);
  assert.equal(gate.check(b).motion, false);
});

test('a truncated frame is refused with what was expected', () => {
  assert.throws(() => new MotionGate().check({ width: 10, height: 10, data: new Uint8Array(10) }), /Expected 300 bytes/);
});
