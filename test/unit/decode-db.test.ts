import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectedRegions, unclipBox } from '../../agent/src/decode/db.js';
import { createDecoder } from '../../agent/src/decode/index.js';
import { letterboxTransform } from '../../agent/src/preprocess/transform.js';

function map(w: number, h: number, rects: Array<{ x: number; y: number; w: number; h: number; p: number }>): Float32Array {
  const m = new Float32Array(w * h);
  for (const r of rects) for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) m[y * w + x] = r.p;
  return m;
}

test('connected regions: two separate blobs, 8-connectivity joins diagonal neighbours', () => {
  const m = map(20, 10, [{ x: 1, y: 1, w: 4, h: 3, p: 0.9 }, { x: 10, y: 5, w: 6, h: 2, p: 0.6 }, { x: 5, y: 4, w: 1, h: 1, p: 0.9 }]);
  const r = connectedRegions(m, 20, 10, 0.3).sort((a, b) => a.x1 - b.x1);
  assert.equal(r.length, 2); // (5,4) touches (4,3) diagonally
  assert.deepEqual([r[0].x1, r[0].y1, r[0].x2, r[0].y2, r[0].areaPx], [1, 1, 6, 5, 13]);
  assert.deepEqual([r[1].x1, r[1].y1, r[1].x2, r[1].y2, r[1].areaPx], [10, 5, 16, 7, 12]);
  assert.ok(Math.abs(r[1].meanScore - 0.6) < 1e-6);
});

test('unclip grows each side by area × ratio / perimeter', () => {
  // 40x10: A = 400, L = 100, D = 400 * 1.5 / 100 = 6.
  assert.deepEqual(unclipBox({ x: 10, y: 20, w: 40, h: 10 }, 1.5), { x: 4, y: 14, w: 52, h: 22 });
});

test('db decoder: keeps confident text, drops weak and tiny regions, maps to source pixels', () => {
  const w = 64, h = 64;
  const data = map(w, h, [
    { x: 8, y: 8, w: 30, h: 6, p: 0.9 },   // text line
    { x: 8, y: 40, w: 30, h: 6, p: 0.35 }, // above binary threshold, mean below box threshold
    { x: 50, y: 50, w: 2, h: 2, p: 0.9 },  // smaller than minSizePx
  ]);
  // Source 128x64 letterboxed top-left into 64x64: scale 0.5.
  const t = letterboxTransform({ srcWidth: 128, srcHeight: 64, dstWidth: 64, dstHeight: 64, align: 'top-left' });
  const dec = createDecoder({ type: 'db', binaryThreshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minSizePx: 3, maxDetections: 10 });
  const dets = dec({ 'sigmoid_0.tmp_0': { dims: [1, 1, h, w], data } }, { transform: t, labels: ['text'], outputNames: ['sigmoid_0.tmp_0'] });
  assert.equal(dets.length, 1);
  // 30x6: D = 180 * 1.5 / 72 = 3.75 → model x 4.25..41.75, y 4.25..17.75 → source ×2.
  const want = { x: 8.5, y: 8.5, w: 75, h: 27 };
  for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(dets[0].box[k] - want[k]) < 1e-6, `${k}: ${dets[0].box[k]}`);
  assert.equal(dets[0].label, 'text');
});
