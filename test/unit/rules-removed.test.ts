/**
 * Rules judged when the tracker removes a track: a person who walks out of the picture between two
 * detections is never detected past a line near the edge or outside the zone they left, so the
 * prediction the tracker carried them on with decides, when it reached the picture's edge and fits
 * how the person was detected walking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesEngine, type RulesFrame } from '../../agent/src/rules/engine.js';
import type { AlertEvent } from '../../agent/src/rules/events.js';
import type { TrackedObject } from '../../agent/src/track/types.js';
import { ByteTracker } from '../../agent/src/track/tracker.js';
import type { Detection } from '../../agent/src/types.js';

const PICTURE = { width: 700, height: 480 };
// A zone over the right part of the picture, short of its edge, and a line across its right end.
const ZONE = [{ x: 400, y: 100 }, { x: 570, y: 100 }, { x: 570, y: 400 }, { x: 400, y: 400 }];
const EDGE_LINE = { from: { x: 560, y: 100 }, to: { x: 560, y: 400 } };

function rules(): RulesEngine {
  return new RulesEngine({ config: { rules: [
    { type: 'zone', id: 'yard', polygon: ZONE, events: ['enter', 'exit'], cooldownMs: 0 },
    { type: 'line', id: 'gate', ...EDGE_LINE, cooldownMs: 0 },
  ] } });
}

const person = (feetX: number): Detection => ({ classId: 0, label: 'person', score: 0.9, box: { x: feetX - 20, y: 200, w: 40, h: 100 } });

/**
 * A person walks right at 5 px/frame from x = 300; the detector runs every 3rd frame and sees them
 * while their feet are left of `lastSeenX`, then never again (they are hidden, or out of the picture).
 * Runs the tracker and the rules, handing the rules the tracks the tracker removes, as the camera
 * pipeline does, until 40 frames after the last sighting.
 */
function walk(lastSeenX: number): { alerts: AlertEvent[]; engine: RulesEngine; removedAt: number[] } {
  const tracker = new ByteTracker();
  const engine = rules();
  const alerts: AlertEvent[] = [];
  const removedAt: number[] = [];
  const lastSeen = Math.floor((lastSeenX - 300) / 5 / 3) * 3;
  for (let f = 0; f <= lastSeen + 40; f++) {
    const x = 300 + 5 * f;
    const dets = f % 3 === 0 ? (f <= lastSeen ? [person(x)] : []) : null;
    const tracks = tracker.update(f, dets);
    const removed = tracker.removedTracks();
    if (removed.length > 0) removedAt.push(f);
    alerts.push(...engine.process({ cameraId: 'c', frameIndex: f, ptsNs: f * 1e8, tracks, removed, picture: PICTURE }));
  }
  return { alerts, engine, removedAt };
}

test('a person last detected short of a line by the picture edge, then gone, is counted crossing it and leaving the zone', () => {
  // Last detected with feet at x = 555 (inside the zone, left of the line at 560); they walk on out
  // of the picture, and no detection ever shows them past the line.
  const { alerts, engine, removedAt } = walk(559);
  assert.equal(removedAt.length, 1, 'the tracker removes the track once');
  assert.deepEqual(alerts.map((a) => a.kind), ['zone-enter', 'zone-exit', 'line-cross']);
  const [, exit, cross] = alerts;
  assert.equal(cross.direction, 'rtl');
  assert.deepEqual(engine.stats().lineCounts.gate, { ltr: 0, rtl: 1 });
  // Judged when the tracker gives the track up, on the box it predicted there (past the edge).
  assert.equal(exit.frameIndex, removedAt[0]);
  assert.equal(cross.frameIndex, removedAt[0]);
  assert.ok(cross.box.x + cross.box.w >= PICTURE.width, JSON.stringify(cross.box));
});

test('a person lost mid-picture is not judged on the prediction drifting on after them', () => {
  // Last detected at x = 450, well inside the picture: 31 frames of prediction carry the box to
  // about x = 605, past the line and out of the zone, but not to the edge of the picture.
  const { alerts, engine, removedAt } = walk(452);
  assert.equal(removedAt.length, 1);
  assert.deepEqual(alerts.map((a) => a.kind), ['zone-enter']);
  assert.deepEqual(engine.stats().lineCounts.gate, { ltr: 0, rtl: 0 });
});

function obj(trackId: number, feetX: number): TrackedObject {
  return { trackId, classId: 0, label: 'person', score: 0.9, box: { x: feetX - 20, y: 200, w: 40, h: 100 }, source: 'detected', framesSinceDetection: 0, hits: 5, startFrame: 0, vxPxPerFrame: 0, vyPxPerFrame: 0 };
}

function frame(i: number, tracks: TrackedObject[], extra: Partial<RulesFrame> = {}): RulesFrame {
  return { cameraId: 'c', frameIndex: i, ptsNs: i * 1e8, tracks, picture: PICTURE, ...extra };
}

test('a removed track whose prediction at the edge does not fit how it was detected moving is not judged', () => {
  const engine = rules();
  const alerts: AlertEvent[] = [];
  // Detected standing at x = 540 (inside the zone) for 2 s, then lost; the tracker's filter carried
  // it to the edge (a velocity taken from someone else's detection), which its detections never showed.
  for (let f = 0; f <= 20; f++) alerts.push(...engine.process(frame(f, [obj(3, 540)])));
  alerts.push(...engine.process(frame(51, [], { removed: [{ trackId: 3, box: { x: 660, y: 200, w: 40, h: 100 } }] })));
  assert.deepEqual(alerts.map((a) => a.kind), []);
  assert.deepEqual(engine.stats().lineCounts.gate, { ltr: 0, rtl: 0 });
});

test('a removed track is forgotten: its id gets no alert afterwards, and without the picture size nothing is judged', () => {
  const engine = rules();
  const alerts: AlertEvent[] = [];
  // Walking right 5 px/frame, last detected at x = 535; removed 31 frames later at the edge, but the
  // caller gave no picture size, so the prediction cannot be placed against the picture.
  for (let f = 0; f <= 17; f++) alerts.push(...engine.process(frame(f, [obj(4, 450 + 5 * f)])));
  alerts.push(...engine.process(frame(48, [], { picture: undefined, removed: [{ trackId: 4, box: { x: 720, y: 200, w: 40, h: 100 } }] })));
  assert.deepEqual(alerts.map((a) => a.kind), []);
  // Had the state been kept, this detection past the line would count a crossing from x = 535.
  alerts.push(...engine.process(frame(49, [obj(4, 630)])));
  assert.deepEqual(engine.stats().lineCounts.gate, { ltr: 0, rtl: 0 });
});
