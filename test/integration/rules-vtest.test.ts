/**
 * Alert rules on real tracks of vtest.avi: motion gate, detector every 3rd frame (the default
 * schedule), tracker interpolating in between (TrackingStage), a zone on the paved walkway and a line across it at the lamp post.
 * Coordinates are source pixels of the 768x576 video, read off its first frames: the walkway is the
 * grey paving between the grass (lower left) and the buildings; feet (box bottom centre) decide.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { videoFileFrames } from '../../agent/src/capture/file-frames.js';
import { TrackingStage } from '../../agent/src/schedule/tracking-stage.js';
import { RulesEngine } from '../../agent/src/rules/engine.js';
import type { AlertEvent } from '../../agent/src/rules/events.js';
import type { TrackedObject } from '../../agent/src/track/types.js';
import type { Box } from '../../agent/src/types.js';
import { vtestMissing, openCocoDetector, VTEST } from '../helpers/vtest.js';

const VIDEO = VTEST;
const FRAMES = 240;
const COOLDOWN_MS = 5000;

const WALKWAY = [
  { x: 300, y: 190 }, { x: 560, y: 150 }, { x: 700, y: 110 }, { x: 700, y: 420 },
  { x: 560, y: 400 }, { x: 330, y: 305 }, { x: 300, y: 292 },
];
const LAMP_LINE = { from: { x: 430, y: 150 }, to: { x: 430, y: 480 } };



test(`vtest.avi walkway zone and lamp-post line, ${FRAMES} frames at detection interval 3`, { timeout: 180_000 }, async (t) => {
  const why = vtestMissing();
  if (why) { t.skip(why); return; }
  const detector = await openCocoDetector();
  // The whole per-frame path: motion gate on real frames, fixed interval 3, tracker, then rules.
  const stage = new TrackingStage({ detect: (f) => detector.detect(f), labels: ['person'], schedule: { mode: 'fixed', interval: 3 } });
  let gateChecks = 0;
  let ids = 0;
  const engine = new RulesEngine({
    config: { rules: [
      { type: 'zone', id: 'walkway', polygon: WALKWAY, events: ['enter', 'exit'], classes: ['person'], minScore: 0.3, cooldownMs: COOLDOWN_MS },
      { type: 'line', id: 'lamp', ...LAMP_LINE, classes: ['person'], cooldownMs: COOLDOWN_MS },
    ] },
    newId: () => `alert-${++ids}`,
  });
  const alerts: AlertEvent[] = [];
  const history = new Map<number, Map<number, TrackedObject>>(); // trackId -> frame -> object
  try {
    for await (const frame of videoFileFrames({ path: VIDEO, maxFrames: FRAMES })) {
      const { tracks, changedFraction } = await stage.process(frame);
      if (changedFraction !== undefined) gateChecks++;
      for (const tr of tracks) {
        let h = history.get(tr.trackId);
        if (!h) history.set(tr.trackId, (h = new Map()));
        h.set(frame.index, tr);
      }
      alerts.push(...engine.process({ cameraId: 'vtest', frameIndex: frame.index, ptsNs: frame.ptsNs, tracks }));
    }
  } finally {
    await detector.close();
  }
  const stats = engine.stats();
  const enters = alerts.filter((a) => a.kind === 'zone-enter');
  const crossings = alerts.filter((a) => a.kind === 'line-cross');
  const summary = { alerts: alerts.length, enters: enters.length, exits: alerts.filter((a) => a.kind === 'zone-exit').length, lineCounts: stats.lineCounts.lamp, suppressedByCooldown: stats.suppressedByCooldown, detectorCalls: stage.scheduler.stats().detections, skippedNoMotion: stage.scheduler.stats().skippedNoMotion };
  t.diagnostic(`rules on vtest: ${JSON.stringify(summary)}`);
  console.log('vtest rules', summary, enters.map((a) => ({ track: a.trackId, frame: a.frameIndex })));

  assert.equal(gateChecks, FRAMES, 'the motion gate looked at every frame');
  // People walk through the whole clip, so the gate should rarely rest the detector.
  assert.ok(stage.scheduler.stats().detections >= FRAMES / 3 - 5 && stage.scheduler.stats().detections <= FRAMES / 3, `${stage.scheduler.stats().detections} detector calls`);
  assert.ok(enters.length >= 1, 'people walking onto the walkway raise entry alerts');
  assert.equal(new Set(alerts.map((a) => a.id)).size, alerts.length, 'alert ids are unique');
  for (const a of alerts) {
    assert.equal(a.cameraId, 'vtest');
    assert.equal(a.label, 'person');
    assert.ok(a.score >= 0.3 && a.trackId > 0 && a.box.w > 0 && a.box.h > 0);
    assert.ok(Number.isFinite(a.timeMs) && a.ptsNs === Math.round((a.frameIndex * 1e9) / 10));
    if (a.kind !== 'line-cross') assert.equal(a.zone, 'walkway');
  }
  // No duplicate alert of one kind for one track within the cooldown.
  const last = new Map<string, number>();
  for (const a of alerts) {
    const key = `${a.ruleId}|${a.kind}|${a.trackId}`;
    const prev = last.get(key);
    if (prev !== undefined) assert.ok((a.ptsNs - prev) / 1e6 >= COOLDOWN_MS, `duplicate ${key} within the cooldown`);
    last.set(key, a.ptsNs);
  }
  // Each crossing's direction agrees with the track's own horizontal motion around it: the line runs
  // top to bottom (+y), so its left side is +x in image coordinates and 'ltr' means moving toward -x.
  // A crossing is judged between two detections, which may lie apart (a person hidden by the lamp
  // post is re-identified on the far side), so the window starts 6 frames before the detection
  // preceding the crossing and ends 6 frames after it.
  assert.ok(stats.lineCounts.lamp.ltr + stats.lineCounts.lamp.rtl >= 1, 'someone crosses the lamp-post line');
  for (const c of crossings) {
    const h = history.get(c.trackId)!;
    const before = Math.max(...[...h].filter(([f, o]) => f < c.frameIndex && o.source === 'detected').map(([f]) => f));
    const frames = [...h.keys()].filter((f) => f >= before - 6 && f <= c.frameIndex + 6);
    const xs = frames.sort((a, b) => a - b).map((f) => h.get(f)!.box.x + h.get(f)!.box.w / 2);
    const dx = xs[xs.length - 1] - xs[0];
    assert.equal(c.direction, dx < 0 ? 'ltr' : 'rtl', `track ${c.trackId} at frame ${c.frameIndex} moved dx=${dx.toFixed(1)}`);
  }
  assert.ok(crossings.length >= 1 && crossings.length <= stats.lineCounts.lamp.ltr + stats.lineCounts.lamp.rtl, 'direction any: counted crossings alert unless within the cooldown');
  // A stone on the grass, feet at about (177, 277), is boxed as a weak "person" (~0.41, 30x27) in every
  // frame. The prediction of a woman lost behind the lamp post at frame 21 ran onto it and took it over
  // at frame 48, which counted a lamp-line crossing and a walkway exit nobody made.
  const onStone = (b: Box) => Math.abs(b.x + b.w / 2 - 177) < 15 && Math.abs(b.y + b.h - 277) < 15 && b.h < 40;
  for (const [id, h] of history) for (const [f, o] of h) assert.ok(!onStone(o.box), `track ${id} is the stone at frame ${f}`);
  assert.deepEqual(alerts.filter((a) => onStone(a.box)).map((a) => `${a.kind} track ${a.trackId} frame ${a.frameIndex}`), []);
});
