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

/** A W×H frame of grey `bg` with a 40×100 "person" of grey `fg` at x (rows y0..y0+100). */
function walkerFrame(W: number, H: number, x: number, bg: number, fg: number, y0: number): RgbImage {
  const data = new Uint8Array(W * H * 3).fill(bg);
  for (let y = y0; y < y0 + 100; y++) data.fill(fg, (y * W + x) * 3, (y * W + x + 40) * 3);
  return { width: W, height: H, data };
}

/** Frames (1..n-1) on which the gate saw no motion while the walker moved 4 px a frame from x0. */
function stillFrames(gate: MotionGate, walker: (x: number) => RgbImage, x0: number, n: number): number[] {
  gate.check(walker(x0));
  const still: number[] = [];
  for (let i = 1; i < n; i++) if (!gate.check(walker(x0 + 4 * i)).motion) still.push(i);
  return still;
}

test('a person 40x100 px walking 4 px a frame on a 1920x1080 camera is motion on every frame; noise is not', () => {
  // One pixel per 30-px block of a 64-px-wide thumbnail saw this walker move on none of 300 frames.
  const walker = (x: number) => walkerFrame(1920, 1080, x, 60, 200, 500);
  const gate = new MotionGate();
  assert.deepEqual(stillFrames(gate, walker, 200, 40), [], 'frames the gate called still');
  // The same frame with sensor noise (up to +-15 grey levels on every pixel) is no motion.
  let seed = 7;
  const noisy = walker(400);
  for (let i = 0; i < noisy.data.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    noisy.data[i] += (seed % 31) - 15;
  }
  gate.check(walker(400));
  assert.equal(gate.check(noisy).motion, false);
});

test('a person in grey clothes (contrast 25 grey levels, just over the threshold) walking 4 px a frame is motion on every frame at 768x576 and 1920x1080', () => {
  // Averaging 12-px cells diluted a 4-px edge shift to a third of its contrast: 0 of 59 frames.
  for (const [W, H] of [[768, 576], [1920, 1080]]) {
    assert.deepEqual(stillFrames(new MotionGate(), (x) => walkerFrame(W, H, x, 90, 115, 200), 100, 30), [], `${W}x${H}: frames the gate called still`);
  }
});
