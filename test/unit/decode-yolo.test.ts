import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecoder } from '../../agent/src/decode/index.js';
import { letterboxTransform, boxToModel } from '../../agent/src/preprocess/transform.js';
import type { Box } from '../../agent/src/types.js';

const labels = ['person', 'car', 'dog'];
const base = { scoreThreshold: 0.35, iouThreshold: 0.45, maxDetections: 100, classAgnosticNms: false };

interface Obj { box: Box; classId: number; score: number }

/** Builds a v8/v11 `[1, 4+C, N]` tensor (channel-major) from boxes given in model pixels. */
function v8Tensor(objs: Obj[], classes: number, n: number): Float32Array {
  const d = new Float32Array((4 + classes) * n);
  objs.forEach((o, i) => {
    d[i] = o.box.x + o.box.w / 2; d[n + i] = o.box.y + o.box.h / 2; d[2 * n + i] = o.box.w; d[3 * n + i] = o.box.h;
    d[(4 + o.classId) * n + i] = o.score;
  });
  return d;
}

function v5Tensor(objs: Array<Obj & { objectness: number }>, classes: number, n: number): Float32Array {
  const stride = 5 + classes;
  const d = new Float32Array(stride * n);
  objs.forEach((o, i) => {
    const r = i * stride;
    d[r] = o.box.x + o.box.w / 2; d[r + 1] = o.box.y + o.box.h / 2; d[r + 2] = o.box.w; d[r + 3] = o.box.h;
    d[r + 4] = o.objectness; d[r + 5 + o.classId] = o.score;
  });
  return d;
}

test('yolo v8: boxes round-trip through the letterbox to source pixels within a pixel', () => {
  const t = letterboxTransform({ srcWidth: 768, srcHeight: 576, dstWidth: 640, dstHeight: 640 });
  const truth = [
    { box: { x: 100, y: 50, w: 200, h: 300 }, classId: 0, score: 0.9 },
    { box: { x: 500, y: 400, w: 150, h: 100 }, classId: 1, score: 0.8 },
    { box: { x: 10, y: 500, w: 60, h: 70 }, classId: 2, score: 0.2 }, // below threshold
  ];
  const n = 50;
  const data = v8Tensor(truth.map((o) => ({ ...o, box: boxToModel(t, o.box) })), labels.length, n);
  const dec = createDecoder({ type: 'yolo', version: 'v8', ...base });
  const dets = dec({ out: { dims: [1, 4 + labels.length, n], data } }, { transform: t, labels, outputNames: ['out'] });
  assert.equal(dets.length, 2);
  for (const [i, d] of dets.entries()) {
    assert.equal(d.label, labels[truth[i].classId]);
    for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - truth[i].box[k]) < 1, `${k}: ${d.box[k]} vs ${truth[i].box[k]}`);
  }
});

test('yolo v11 with class-aware NMS keeps the best box per class and overlapping boxes of other classes', () => {
  const t = letterboxTransform({ srcWidth: 640, srcHeight: 640, dstWidth: 640, dstHeight: 640 });
  const objs = [
    { box: { x: 100, y: 100, w: 100, h: 100 }, classId: 0, score: 0.6 },
    { box: { x: 105, y: 102, w: 100, h: 100 }, classId: 0, score: 0.95 }, // best person
    { box: { x: 100, y: 100, w: 100, h: 100 }, classId: 1, score: 0.7 },  // car, same place
    { box: { x: 400, y: 400, w: 50, h: 50 }, classId: 0, score: 0.5 },    // separate person
  ];
  const n = 8;
  const dims = [1, 4 + labels.length, n];
  const data = v8Tensor(objs, labels.length, n);
  const aware = createDecoder({ type: 'yolo', version: 'v11', ...base })({ o: { dims, data } }, { transform: t, labels, outputNames: ['o'] });
  assert.deepEqual(aware.map((d) => [d.label, d.score]).sort(), [['car', objs[2].score], ['person', objs[1].score], ['person', objs[3].score]].map(([l, s]) => [l, Math.fround(s as number)]).sort());
  assert.equal(aware.find((d) => d.score === Math.fround(0.95))!.box.x, 105);
  const agnostic = createDecoder({ type: 'yolo', version: 'v11', ...base, classAgnosticNms: true })({ o: { dims, data } }, { transform: t, labels, outputNames: ['o'] });
  assert.equal(agnostic.length, 2);
});

test('yolo v5: score is objectness × class probability and low objectness is dropped', () => {
  const t = letterboxTransform({ srcWidth: 1280, srcHeight: 720, dstWidth: 640, dstHeight: 640 });
  const truth = { box: { x: 320, y: 180, w: 640, h: 360 }, classId: 2 };
  const objs = [
    { ...truth, box: boxToModel(t, truth.box), objectness: 0.8, score: 0.9 },
    { box: { x: 0, y: 0, w: 10, h: 10 }, classId: 0, objectness: 0.1, score: 1 },
  ];
  const n = 4;
  const data = v5Tensor(objs, labels.length, n);
  const dets = createDecoder({ type: 'yolo', version: 'v5', ...base })({ y: { dims: [1, n, 5 + labels.length], data } }, { transform: t, labels, outputNames: ['y'] });
  assert.equal(dets.length, 1);
  assert.equal(dets[0].label, 'dog');
  assert.ok(Math.abs(dets[0].score - 0.72) < 1e-6);
  for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(dets[0].box[k] - truth.box[k]) < 1, `${k}`);
});

test('a tensor of the wrong layout is refused with a ModelError that names the dims', () => {
  const t = letterboxTransform({ srcWidth: 64, srcHeight: 64, dstWidth: 64, dstHeight: 64 });
  const dec = createDecoder({ type: 'yolo', version: 'v8', ...base });
  assert.throws(() => dec({ o: { dims: [1, 3, 10], data: new Float32Array(30) } }, { transform: t, labels, outputNames: ['o'] }), { code: 'E_MODEL', message: /\[1, 3, 10\]/ });
  assert.throws(() => dec({ o: { dims: [1, 7, 10], data: new Float32Array(70) } }, { transform: t, labels, outputNames: ['missing'] }), { code: 'E_MODEL', message: /missing/ });
});

test('a wrong decoder.version is a ModelError pointing at it, not detections of class 96 with scores in the hundreds', () => {
  const coco = Array.from({ length: 80 }, (_, i) => `c${i}`);
  const t = letterboxTransform({ srcWidth: 640, srcHeight: 640, dstWidth: 640, dstHeight: 640 });
  const obj = { box: { x: 270, y: 220, w: 100, h: 200 }, classId: 0, score: 0.9 };
  const n = 100;
  const v5 = { dims: [1, n, 85], data: v5Tensor([{ ...obj, objectness: 0.95 }], 80, n) };
  const v8 = { dims: [1, 84, n], data: v8Tensor([obj], 80, n) };
  // Coordinates spread over the anchors, as in a real output, so that misread rows carry large values.
  for (let i = 1; i < n; i++) { v5.data[i * 85] = i * 6; v8.data[i] = i * 6; }
  const ctx = { transform: t, labels: coco, outputNames: ['o'] };
  for (const [tensor, version] of [[v5, 'v8'], [v5, 'v11'], [v8, 'v5']] as const) {
    const dec = createDecoder({ type: 'yolo', version, ...base });
    assert.throws(() => dec({ o: tensor }, ctx), { code: 'E_MODEL', message: /check decoder\.version/ }, `[${tensor.dims.join(', ')}] read as ${version}`);
  }
  // The right version decodes the one object.
  assert.deepEqual(createDecoder({ type: 'yolo', version: 'v5', ...base })({ o: v5 }, ctx).map((d) => d.label), ['c0']);
  assert.deepEqual(createDecoder({ type: 'yolo', version: 'v8', ...base })({ o: v8 }, ctx).map((d) => d.label), ['c0']);
  // Labels that do not match the model's classes are refused too (they would name the wrong classes).
  assert.throws(() => createDecoder({ type: 'yolo', version: 'v8', ...base })({ o: v8 }, { ...ctx, labels }), { code: 'E_MODEL', message: /C = 3 \(the labels/ });
});
