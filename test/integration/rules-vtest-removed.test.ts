/**
 * The camera pipeline on vtest.avi at the default schedule (detector every 3rd frame, motion gate):
 * rules judged when the tracker removes a track that walked out of the picture.
 *
 * Around frames 336-375 two people walk off the walkway to the right side by side, the man in the red
 * jacket nearer the camera and the woman in black beyond him. From frame 345 she is hidden behind him
 * and at interval 3 the detector does not find her again: her last detection (frame 342, feet at
 * about x = 692) is still on the walkway (its right edge is x = 700) and short of the line at
 * x = 720, yet by frame 359 she stands by the bollards at x = 742 and by 375 she is out of the
 * picture. A human sees both people leave the walkway and pass the line; the tracker gives her track
 * up at frame 373, its prediction past the right edge, and that prediction decides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { CameraPipeline } from '../../agent/src/pipeline/camera-pipeline.js';
import { agentConfigValidator, type AgentConfig } from '../../agent/src/config/schema.js';
import { RulesEngine } from '../../agent/src/rules/engine.js';
import type { AlertEvent } from '../../agent/src/rules/events.js';
import { vtestMissing, openCocoDetector, VTEST, COCO_MODEL } from '../helpers/vtest.js';

const FRAMES = 400;
const WALKWAY = [
  { x: 300, y: 190 }, { x: 560, y: 150 }, { x: 700, y: 110 }, { x: 700, y: 420 },
  { x: 560, y: 400 }, { x: 330, y: 305 }, { x: 300, y: 292 },
];
const RULES = [
  { type: 'zone' as const, id: 'walkway', polygon: WALKWAY, events: ['enter' as const, 'exit' as const], classes: ['person'], minScore: 0.3, cooldownMs: 5000 },
  { type: 'line' as const, id: 'lamp', from: { x: 430, y: 150 }, to: { x: 430, y: 480 }, classes: ['person'], cooldownMs: 5000 },
  // Across the walkway's right end, past the zone's edge, where people leave the picture.
  { type: 'line' as const, id: 'bollards', from: { x: 720, y: 250 }, to: { x: 720, y: 480 }, classes: ['person'], cooldownMs: 5000 },
];
// The two people leave the walkway and pass the bollard line in these frames; the judgement of a
// removed track comes when the tracker gives it up, lostBufferFrames (30) + 1 frames after its last
// detection. The next person to leave on the right does so at frame 387.
const WINDOW = { from: 340, to: 380 };

const key = (a: AlertEvent) => `${a.kind} ${a.ruleId} ${a.direction ?? ''} track ${a.trackId} frame ${a.frameIndex}`;

test(`vtest.avi, ${FRAMES} frames at interval 3: a person hidden as she walks out of the picture is counted leaving the walkway and passing the line`, { timeout: 240_000 }, async (t) => {
  const why = vtestMissing();
  if (why) { t.skip(why); return; }
  const r = agentConfigValidator.check({
    stateDir: tmpdir(), detector: { model: resolve(COCO_MODEL) },
    cameras: [{ source: { kind: 'file', path: resolve(VTEST), id: 'vtest', maxFrames: FRAMES }, rules: { rules: RULES } }],
  });
  assert.ok(r.ok, JSON.stringify(r));
  const config = r.value as AgentConfig;
  // The same rules told only of each frame's tracks, never of removed ones: what the pipeline
  // alerted before removed tracks were judged.
  const tracksOnly = new RulesEngine({ config: config.cameras[0].rules });
  const before: AlertEvent[] = [];
  const alerts: AlertEvent[] = [];
  const detector = await openCocoDetector();
  let pipeline: CameraPipeline;
  try {
    pipeline = new CameraPipeline({
      camera: config.cameras[0], detector, schedule: config.schedule, tracker: config.tracker, labels: ['person'],
      sinks: {
        onFrame: (f) => { before.push(...tracksOnly.process({ cameraId: f.cameraId, frameIndex: f.frame.index, ptsNs: f.frame.ptsNs, tracks: f.tracks })); },
        onAlert: (a) => { alerts.push(a); },
      },
    });
    const stats = await pipeline.run();
    assert.equal(stats.processed, FRAMES);
  } finally {
    await detector.close();
  }
  const counts = pipeline.rules.stats().lineCounts;
  const inWindow = (a: AlertEvent) => a.frameIndex >= WINDOW.from && a.frameIndex <= WINDOW.to && a.box.x + a.box.w / 2 > 640;
  const exits = alerts.filter((a) => a.kind === 'zone-exit' && inWindow(a));
  const passes = alerts.filter((a) => a.kind === 'line-cross' && a.ruleId === 'bollards' && inWindow(a));
  const summary = { lineCounts: counts, tracksOnlyLineCounts: tracksOnly.stats().lineCounts, exits: exits.map(key), passes: passes.map(key) };
  t.diagnostic(JSON.stringify(summary));

  assert.equal(new Set(exits.map((a) => a.trackId)).size, 2, `both people leave the walkway on the right: ${JSON.stringify(summary)}`);
  assert.equal(new Set(passes.map((a) => a.trackId)).size, 2, `both pass the bollard line: ${JSON.stringify(summary)}`);
  // Moving +x across a top-to-bottom line is 'rtl' (its left side is +x in image coordinates).
  for (const a of passes) assert.equal(a.direction, 'rtl', key(a));
  // Judging removed tracks adds only what the detected boxes could not show: every alert of the
  // tracks-only rules still comes, the lamp-post line in mid-picture counts the same, and the one
  // extra crossing is on the bollard line.
  const got = new Set(alerts.map(key));
  for (const a of before) assert.ok(got.has(key(a)), `missing ${key(a)}`);
  const extra = alerts.filter((a) => !before.some((b) => key(b) === key(a)));
  for (const a of extra) assert.ok(inWindow(a) && (a.kind === 'zone-exit' || a.ruleId === 'bollards'), `unexpected ${key(a)}`);
  assert.deepEqual(counts.lamp, tracksOnly.stats().lineCounts.lamp);
  assert.equal(counts.bollards.ltr + counts.bollards.rtl, tracksOnly.stats().lineCounts.bollards.ltr + tracksOnly.stats().lineCounts.bollards.rtl + extra.filter((a) => a.kind === 'line-cross').length);
});
