import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DetectionScheduler } from '../../agent/src/schedule/scheduler.js';
import { scheduleConfigValidator } from '../../agent/src/schedule/schema.js';

test('fixed mode detects every k-th frame', () => {
  const s = new DetectionScheduler({ mode: 'fixed', interval: 3 });
  const picked = Array.from({ length: 10 }, (_, i) => i).filter((i) => s.decide(i).detect);
  assert.deepEqual(picked, [0, 3, 6, 9]);
  assert.equal(s.stats().detections, 4);
});

test('adaptive mode picks k from inference time and the latency budget, within bounds', () => {
  const s = new DetectionScheduler({ mode: 'adaptive', latencyBudgetMs: 33, minInterval: 1, maxInterval: 5, latencyEwmaAlpha: 1 });
  assert.equal(s.interval(), 1, 'no measurement yet: detect every frame');
  s.recordInference(90);
  assert.equal(s.interval(), 3);
  s.recordInference(20);
  assert.equal(s.interval(), 1);
  s.recordInference(1000);
  assert.equal(s.interval(), 5);
});

test('adaptive mode smooths inference time', () => {
  const s = new DetectionScheduler({ mode: 'adaptive', latencyBudgetMs: 10, maxInterval: 100, latencyEwmaAlpha: 0.5 });
  s.recordInference(20);
  s.recordInference(40);
  assert.equal(s.stats().inferenceMsAvg, 30);
  assert.equal(s.interval(), 3);
});

test('motion gate: no motion skips detection until the idle refresh; motion triggers it', () => {
  const s = new DetectionScheduler({ mode: 'fixed', interval: 2, maxIdleFrames: 10 });
  const seq: string[] = [];
  for (let i = 0; i < 25; i++) {
    const motion = i >= 15 && i < 18;
    const d = s.decide(i, motion);
    if (d.detect) seq.push(`${i}:${d.reason}`);
  }
  assert.deepEqual(seq, ['0:first-frame', '10:idle-refresh', '15:motion', '17:motion']);
  assert.ok(s.stats().skippedNoMotion > 0);
  assert.equal(s.stats().motionTriggered, 2);
});

test('motion on a frame the interval skipped is not forgotten when the next frames are still', () => {
  // Movement on frames 10 and 11 (the interval skips 11), still from 12 on: the detector must look
  // once more at 13, or the tracker holds what it saw at 10 until the idle refresh.
  const s = new DetectionScheduler({ mode: 'fixed', interval: 3, maxIdleFrames: 150 });
  const seq: string[] = [];
  for (let i = 0; i < 40; i++) {
    const d = s.decide(i, i === 10 || i === 11);
    if (d.detect) seq.push(`${i}:${d.reason}`);
  }
  assert.deepEqual(seq, ['0:first-frame', '10:motion', '13:motion']);
});

test('a tentative track gets the detection that confirms it, at the next interval, in a still scene', () => {
  const s = new DetectionScheduler({ mode: 'fixed', interval: 3, maxIdleFrames: 150 });
  const seq: string[] = [];
  for (let i = 0; i < 40; i++) {
    const d = s.decide(i, i === 10, { tentativeTracks: i >= 10 && i <= 13 });
    if (d.detect) seq.push(`${i}:${d.reason}`);
  }
  assert.deepEqual(seq, ['0:first-frame', '10:motion', '13:confirm']);
});

test('schedule config defaults and validation', () => {
  const c = scheduleConfigValidator.parse({}, 'schedule');
  assert.equal(c.mode, 'fixed');
  assert.equal(c.interval, 3);
  assert.equal(c.motion.thumbWidth, 64);
  assert.throws(() => scheduleConfigValidator.parse({ mode: 'sometimes', motion: {} }, 'schedule'), /mode/);
});
