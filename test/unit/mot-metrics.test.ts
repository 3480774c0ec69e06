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

test('evaluateTracking: synthetic walkers at interval 3 keep ids and close boxes, and count saved calls', async () => {
  const { evaluateTracking } = await import('../../agent/src/eval/tracking-eval.js');
  type F = import('../../agent/src/types.js').Frame;
  async function* frames(): AsyncGenerator<F> {
    for (let i = 0; i < 60; i++) yield { width: 640, height: 480, data: new Uint8Array(0), index: i, ptsNs: i * 1e8, capturedAtNs: 0, sourceId: 'synthetic' };
  }
  let calls = 0;
  const r = await evaluateTracking({
    frames: frames(),
    interval: 3,
    detect: async (f) => {
      calls++;
      return [
        { classId: 0, label: 'person', score: 0.8, box: { x: 50 + 4 * f.index, y: 100, w: 30, h: 80 } },
        { classId: 0, label: 'person', score: 0.8, box: { x: 500 - 3 * f.index, y: 260, w: 30, h: 80 } },
        { classId: 2, label: 'car', score: 0.9, box: { x: 10, y: 400, w: 100, h: 50 } },
      ];
    },
    labels: ['person'],
  });
  assert.equal(calls, 60, 'the detector runs once per frame: the interval run reuses the reference detections');
  assert.deepEqual(r.detectorCalls, { reference: 60, interval: 20, saved: 40, savedFraction: 40 / 60 });
  assert.deepEqual(r.tracks, { reference: 2, interval: 2 });
  assert.equal(r.idSwitchesVsReference, 0);
  assert.ok(r.meanIouInterpolated! > 0.8, `${r.meanIouInterpolated}`);
  assert.ok(r.mota > 0.9 && r.idf1 > 0.9, `${r.mota} ${r.idf1}`);
});
