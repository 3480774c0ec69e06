/**
 * Tracking at detection interval 3 on vtest.avi with the default COCO detector, against the tracker
 * fed every frame's detections. The detector runs once per frame: the interval run reuses the
 * reference detections on frames where 3 divides the index, which equals running the detector at
 * interval 3 because the detector is deterministic for a given frame (evaluateTracking does this).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateTracking } from '../../agent/src/eval/tracking-eval.js';
import { videoFileFrames } from '../../agent/src/capture/file-frames.js';
import { vtestMissing, openCocoDetector, VTEST } from '../helpers/vtest.js';
import { runCli } from '../helpers/cli.js';

const VIDEO = VTEST;
const FRAMES = 180;



test(`vtest.avi, ${FRAMES} frames, interval 3: interpolated boxes stay on the reference tracks`, { timeout: 240_000 }, async (t) => {
  const why = vtestMissing();
  if (why) { t.skip(why); return; }
  const detector = await openCocoDetector();
  try {
    const report = await evaluateTracking({
      frames: videoFileFrames({ path: VIDEO, maxFrames: FRAMES }),
      detect: (f) => detector.detect(f),
      interval: 3,
      labels: ['person'],
      maxFrames: FRAMES,
    });
    const figures = {
      frames: report.frames, meanIou: report.meanIou, meanIouInterpolated: report.meanIouInterpolated,
      idSwitchesEveryFrame: report.idSwitches.reference, idSwitchesInterval3: report.idSwitches.interval,
      idSwitchesVsReference: report.idSwitchesVsReference, mota: report.mota, idf1: report.idf1,
      tracks: report.tracks, detectorCallsSaved: report.detectorCalls.saved, inferenceMsAvg: report.inferenceMsAvg,
    };
    t.diagnostic(`tracking figures: ${JSON.stringify(figures)}`);
    console.log('vtest interval-3 tracking figures', figures);
    assert.equal(report.frames, FRAMES);
    assert.equal(report.detectorCalls.interval, FRAMES / 3);
    assert.equal(report.detectorCalls.saved, FRAMES - FRAMES / 3);
    assert.ok(report.tracks.reference >= 3, `expected several people tracked, got ${report.tracks.reference}`);
    assert.ok(report.mot.predictedPairFrames > 50, 'interpolated boxes were compared');
    assert.ok(report.meanIou >= 0.6, `mean IoU ${report.meanIou}`);
    assert.ok(report.meanIouInterpolated! >= 0.6, `mean IoU of interpolated boxes ${report.meanIouInterpolated}`);
    assert.ok(report.idSwitches.interval <= 1.25 * report.idSwitches.reference,
      `ID switches at interval 3 (${report.idSwitches.interval}) must be at most 1.25x the every-frame run's (${report.idSwitches.reference})`);
  } finally {
    await detector.close();
  }
});

test('edge-agent eval-tracking --json prints the figures', { timeout: 120_000 }, async (t) => {
  const why = vtestMissing();
  if (why) { t.skip(why); return; }
  const r = await runCli('edge-agent', ['eval-tracking', '--input', VIDEO, '--interval', '3', '--frames', '24', '--labels', 'person', '--json'], { timeoutMs: 110_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  assert.equal(out.ok, true);
  assert.equal(out.frames, 24);
  for (const k of ['meanIou', 'meanIouInterpolated', 'idSwitches', 'idSwitchesVsReference', 'mota', 'idf1', 'detectorCalls']) assert.ok(k in out, `missing ${k}`);
  assert.deepEqual(out.detectorCalls, { reference: 24, interval: 8, saved: 16, savedFraction: 16 / 24 });
});

test('edge-agent eval-tracking refuses a bad interval and a missing input', async () => {
  const bad = await runCli('edge-agent', ['eval-tracking', '--input', VIDEO, '--interval', '0', '--json']);
  assert.equal(bad.code, 2);
  assert.match(bad.stdout, /Expected --interval to be a positive integer/);
  const none = await runCli('edge-agent', ['eval-tracking', '--input', '/nonexistent.avi', '--json']);
  assert.equal(none.code, 4);
});
