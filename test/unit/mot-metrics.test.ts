import { test } from 'node:test';
import assert from 'node:assert/strict';
import { motMetrics, selfIdSwitches, type MotFrame } from '../../agent/src/eval/mot.js';

const box = (x: number) => ({ x, y: 0, w: 10, h: 10 });

function frames(n: number, objs: (f: number) => Array<{ id: number; x: number }>): MotFrame[] {
  return Array.from({ length: n }, (_, f) => ({ frameIndex: f, objects: objs(f).map((o) => ({ id: o.id, box: box(o.x) })) }));
}

test('identical runs score MOTA 1, IDF1 1, mean IoU 1', () => {
  const gt = frames(10, (f) => [{ id: 1, x: f }, { id: 2, x: 100 + f }]);
  const m = motMetrics(gt, gt);
  assert.equal(m.mota, 1);
  assert.equal(m.idf1, 1);
  assert.equal(m.meanIou, 1);
  assert.equal(m.idSwitches, 0);
});

test('an id change half way is one ID switch and halves the IDF1 of that track', () => {
  const gt = frames(10, (f) => [{ id: 1, x: f }]);
  const hyp = frames(10, (f) => [{ id: f < 5 ? 7 : 8, x: f }]);
  const m = motMetrics(gt, hyp);
  assert.equal(m.idSwitches, 1);
  assert.equal(m.mota, 1 - 1 / 10);
  assert.equal(m.idf1, 0.5);
  assert.equal(selfIdSwitches(hyp), 1);
  assert.equal(selfIdSwitches(gt), 0);
});

test('misses and false positives count against MOTA; mean IoU sees drift', () => {
  const gt = frames(4, () => [{ id: 1, x: 0 }]);
  const hyp: MotFrame[] = [
    { frameIndex: 0, objects: [{ id: 1, box: box(0) }] },
    { frameIndex: 1, objects: [{ id: 1, box: box(2), source: 'predicted' }] },
    { frameIndex: 2, objects: [] },
    { frameIndex: 3, objects: [{ id: 1, box: box(0) }, { id: 9, box: box(500) }] },
  ];
  const m = motMetrics(gt, hyp);
  assert.equal(m.misses, 1);
  assert.equal(m.falsePositives, 1);
  assert.equal(m.mota, 1 - 2 / 4);
  assert.ok(Math.abs(m.meanIouPredicted! - 80 / 120) < 1e-9);
  assert.ok(Math.abs(m.meanIou - (1 + 80 / 120 + 1) / 3) < 1e-9);
});
