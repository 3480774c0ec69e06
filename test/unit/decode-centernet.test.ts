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
