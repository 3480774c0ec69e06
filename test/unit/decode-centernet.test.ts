import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecoder } from '../../agent/src/decode/index.js';
import { letterboxTransform, boxToModel } from '../../agent/src/preprocess/transform.js';

const labels = ['person', 'bicycle', 'car'];

test('centernet [1, N, 6]: thresholds, class ids, letterbox round trip and NMS of duplicates', () => {
  const t = letterboxTransform({ srcWidth: 768, srcHeight: 576, dstWidth: 512, dstHeight: 512 });
  const person = { x: 300, y: 100, w: 80, h: 240 };
  const car = { x: 10, y: 400, w: 300, h: 150 };
  const rows: number[][] = [];
  const add = (b: typeof person, score: number, cls: number) => {
    const m = boxToModel(t, b);
    rows.push([m.x, m.y, m.x + m.w, m.y + m.h, score, cls]);
  };
  add(person, 0.9, 0);
  add({ ...person, x: person.x + 2 }, 0.6, 0); // duplicate → suppressed
  add(car, 0.7, 2);
  add({ x: 600, y: 10, w: 20, h: 20 }, 0.1, 1); // below threshold
  while (rows.length < 100) rows.push([0, 0, 0, 0, 0, 0]); // padding rows have score 0
  const data = Float32Array.from(rows.flat());
  const dec = createDecoder({ type: 'centernet', scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 });
  const dets = dec({ 'tower_0/detections': { dims: [1, 100, 6], data } }, { transform: t, labels, outputNames: ['tower_0/detections'] });
  assert.deepEqual(dets.map((d) => d.label), ['person', 'car']);
  for (const [d, truth] of [[dets[0], person], [dets[1], car]] as const) {
    for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - truth[k]) < 1, `${d.label}.${k}: ${d.box[k]} vs ${truth[k]}`);
  }
});

test('centernet refuses rows that are not 6 wide', () => {
  const t = letterboxTransform({ srcWidth: 64, srcHeight: 64, dstWidth: 64, dstHeight: 64 });
  const dec = createDecoder({ type: 'centernet', scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 });
  assert.throws(() => dec({ o: { dims: [1, 10, 5], data: new Float32Array(50) } }, { transform: t, labels, outputNames: ['o'] }), { code: 'E_MODEL' });
});

test('centernet-heads: 3×3 peaks over cells × classes, ties kept, top-k, boxes from the side map; NHWC and NCHW agree', () => {
  const h = 4, w = 5, classes = 2, stride = 4;
  const t = letterboxTransform({ srcWidth: 20, srcHeight: 16, dstWidth: 20, dstHeight: 16 });
  const nhwc = new Float32Array(h * w * classes);
  const sides = new Float32Array(h * w * 4);
  const put = (y: number, x: number, k: number, v: number) => { nhwc[(y * w + x) * classes + k] = v; };
  put(1, 2, 1, 0.9); // peak: class 1 at row 1, col 2
  put(1, 1, 1, 0.5); // next to 0.9 of the same class: not a peak
  put(1, 1, 0, 0.6); // same cell, other class: its own peak
  put(3, 0, 0, 0.7); // peak in a corner
  put(3, 4, 0, 0.4); put(2, 4, 0, 0.4); // equal neighbours: both peaks, as in the graph (Equal to MaxPool)
  put(0, 4, 1, 0.2); // below the threshold
  sides.set([1, 2, 3, 4], (1 * w + 2) * 4);
  sides.set([2, 2, 2, 2], (3 * w + 0) * 4);
  // The same tensors in NCHW.
  const nchw = new Float32Array(nhwc.length);
  const sidesChw = new Float32Array(sides.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    for (let k = 0; k < classes; k++) nchw[k * h * w + y * w + x] = nhwc[(y * w + x) * classes + k];
    for (let j = 0; j < 4; j++) sidesChw[j * h * w + y * w + x] = sides[(y * w + x) * 4 + j];
  }
  const spec = { type: 'centernet-heads', heatmap: 'hm', boxes: 'wh', stride, topK: 100, scoreThreshold: 0.3, iouThreshold: 0.99, maxDetections: 100 } as const;
  const ctx = { transform: t, labels, outputNames: ['hm', 'wh'] };
  const a = createDecoder({ ...spec, layout: 'nhwc' })({ hm: { dims: [1, h, w, classes], data: nhwc }, wh: { dims: [1, h, w, 4], data: sides } }, ctx);
  const b = createDecoder({ ...spec, layout: 'nchw' })({ hm: { dims: [1, classes, h, w], data: nchw }, wh: { dims: [1, 4, h, w], data: sidesChw } }, ctx);
  assert.deepEqual(a, b);
  assert.deepEqual(a.map((d) => [d.label, d.score.toFixed(1)]), [['bicycle', '0.9'], ['person', '0.7'], ['person', '0.6'], ['person', '0.4'], ['person', '0.4']]);
  // row 1, col 2 at stride 4 is (8, 4): sides l=1, t=2, r=3, b=4 → x 7..11, y 2..8.
  assert.deepEqual(a[0].box, { x: 7, y: 2, w: 4, h: 6 });
  assert.deepEqual(a[1].box, { x: 0, y: 10, w: 2, h: 4 }, 'x -2..2 clipped to the frame');
  const top2 = createDecoder({ ...spec, layout: 'nhwc', topK: 2 })({ hm: { dims: [1, h, w, classes], data: nhwc }, wh: { dims: [1, h, w, 4], data: sides } }, ctx);
  assert.deepEqual(top2.map((d) => d.score.toFixed(1)), ['0.9', '0.7']);
});

test('centernet-heads names the outputs it needs and refuses maps on different grids', () => {
  const t = letterboxTransform({ srcWidth: 64, srcHeight: 64, dstWidth: 64, dstHeight: 64 });
  const dec = createDecoder({ type: 'centernet-heads', heatmap: 'hm', boxes: 'wh', layout: 'nhwc', stride: 4, topK: 100, scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 });
  assert.throws(() => dec({ hm: { dims: [1, 4, 4, 2], data: new Float32Array(32) } }, { transform: t, labels, outputNames: ['hm'] }), /"wh"/);
  assert.throws(() => dec({ hm: { dims: [1, 4, 4, 2], data: new Float32Array(32) }, wh: { dims: [1, 8, 8, 4], data: new Float32Array(256) } }, { transform: t, labels, outputNames: ['hm', 'wh'] }), { code: 'E_MODEL' });
});
