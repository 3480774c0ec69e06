import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoxKalman } from '../../agent/src/track/kalman.js';

test('Kalman learns a constant velocity and extrapolates through a gap', () => {
  const kf = new BoxKalman({ x: 100, y: 50, w: 40, h: 80 });
  for (let f = 1; f <= 20; f++) {
    kf.predict();
    kf.update({ x: 100 + 3 * f, y: 50 - 1 * f, w: 40, h: 80 });
  }
  const v = kf.velocity();
  assert.ok(Math.abs(v.vxPxPerFrame - 3) < 0.2, `vx ${v.vxPxPerFrame}`);
  assert.ok(Math.abs(v.vyPxPerFrame + 1) < 0.2, `vy ${v.vyPxPerFrame}`);
  // Occlusion: 10 frames without measurement.
  kf.predict(10);
  const b = kf.box();
  assert.ok(Math.abs(b.x - (100 + 3 * 30)) < 4, `x ${b.x}`);
  assert.ok(Math.abs(b.y - (50 - 30)) < 4, `y ${b.y}`);
  assert.ok(Math.abs(b.w - 40) < 1 && Math.abs(b.h - 80) < 1);
});

test('Kalman uncertainty grows while predicting and shrinks on update', () => {
  const kf = new BoxKalman({ x: 0, y: 0, w: 20, h: 20 });
  const v0 = kf.positionVariance().x;
  kf.predict(5);
  const v1 = kf.positionVariance().x;
  assert.ok(v1 > v0);
  kf.update({ x: 0, y: 0, w: 20, h: 20 });
  assert.ok(kf.positionVariance().x < v1);
});

test('Kalman measurements every 3rd frame still estimate per-frame velocity', () => {
  const kf = new BoxKalman({ x: 0, y: 0, w: 50, h: 100 });
  for (let f = 3; f <= 60; f += 3) {
    kf.predict(3);
    kf.update({ x: 2 * f, y: 0, w: 50, h: 100 });
  }
  assert.ok(Math.abs(kf.velocity().vxPxPerFrame - 2) < 0.15, `vx ${kf.velocity().vxPxPerFrame}`);
  kf.predict(1);
  assert.ok(Math.abs(kf.box().x - 122) < 2, `x ${kf.box().x}`);
});

test('a shrinking box never gets a negative size', () => {
  const kf = new BoxKalman({ x: 0, y: 0, w: 10, h: 10 });
  for (let f = 1; f <= 8; f++) { kf.predict(); kf.update({ x: 0, y: 0, w: 10 - f, h: 10 - f }); }
  kf.predict(50);
  const b = kf.box();
  assert.ok(b.w >= 1 && b.h >= 1, JSON.stringify(b));
});
