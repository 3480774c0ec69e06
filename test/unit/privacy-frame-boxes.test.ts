/**
 * The agent gave the privacy stage each tracked person twice, as its track and as the raw detection
 * the track was matched to. A face stands for one person only, so a tracked person whose face was
 * found still got a head band from the other copy (over-blur). Now a detection counts once with its
 * track; two people whose boxes cross are still both given, and both get their bands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { FleetAttachment } from '../../agent/src/pipeline/fleet-attachment.js';
import { FrameBoxes } from '../../agent/src/privacy/frame-boxes.js';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { TrackedObject } from '../../agent/src/track/types.js';
import type { Box, Detection, Frame } from '../../agent/src/types.js';

const W = 640, H = 480;
const data = new Uint8Array(W * H * 3).fill(90);
const frame = (index: number): Frame => ({ width: W, height: H, data, index, ptsNs: index * 33_333_333, capturedAtNs: 0, sourceId: 'cam' });
const person = (box: Box): Detection => ({ classId: 0, label: 'person', score: 0.9, box });
const track = (trackId: number, box: Box, source: TrackedObject['source'] = 'detected'): TrackedObject => ({
  trackId, classId: 0, label: 'person', score: 0.9, box, source, framesSinceDetection: source === 'detected' ? 0 : 1,
  hits: 5, startFrame: 0, vxPxPerFrame: 0, vyPxPerFrame: 0,
});
const minimal = { detector: { model: 'm.onnx' }, cameras: [{ source: { kind: 'file', path: 'v.avi', id: 'cam' } }], link: { url: 'mqtt://127.0.0.1:1' } };
const bandsOf = (regions: readonly { source: string; box: Box }[]) => regions.filter((r) => r.source === 'band').map((r) => r.box);
const hides = (boxes: readonly Box[], x0: number, y0: number, x1: number, y1: number) =>
  boxes.some((b) => b.x <= x0 && b.y <= y0 && b.x + b.w >= x1 && b.y + b.h >= y1);

/** A fleet attachment whose privacy stage has a stand-in face model that finds `faces` in every frame. */
async function attachment(faces: readonly Box[]): Promise<FleetAttachment> {
  const att = new FleetAttachment({ config: agentConfigValidator.parse(minimal, 'config'), secret: 'x' });
  const config = parsePrivacyConfig({ plates: { enabled: false } });
  const stage = new PrivacyStage({
    config, sink: () => undefined,
    createDetector: (deps) => new PrivacyDetector({
      ...deps, headBand: config.faces.headBand, faceScoreThreshold: config.faces.scoreThreshold,
      faces: { detect: async () => faces.map((box) => ({ classId: 0, label: 'face', score: 0.9, box })) },
    }),
  });
  await stage.start();
  (att as { privacy: PrivacyStage }).privacy = stage;
  return att;
}

test('a tracked person whose face was found gets no head band, on a detected frame and on the predicted one after', async () => {
  const P = { x: 300, y: 100, w: 80, h: 240 };
  const att = await attachment([{ x: 325, y: 110, w: 30, h: 35 }]);
  const sinks = att.sinks();
  await sinks.onFrame!({ cameraId: 'cam', frame: frame(0), detections: [person(P)], tracks: [track(1, P)], alerts: [] });
  const detected = await att.privacy.submit(frame(0), 'alert-snapshot');
  assert.ok(detected.released);
  assert.deepEqual(bandsOf(detected.image.regions), [], JSON.stringify(detected.image.regions));
  // The next frame, between detections: the track is predicted a little further on; the raw
  // detection is still the camera's latest and is the same person.
  await sinks.onFrame!({ cameraId: 'cam', frame: frame(1), detections: undefined, tracks: [track(1, { ...P, x: 302 }, 'predicted')], alerts: [] });
  const predicted = await att.privacy.submit(frame(1), 'alert-snapshot');
  assert.ok(predicted.released);
  assert.deepEqual(bandsOf(predicted.image.regions), [], JSON.stringify(predicted.image.regions));
  await att.privacy.stop();
});

test('two crossing persons without faces both get bands, tracked or one of them not yet', async () => {
  // Boxes crossing (IoU 0.6): their heads are at x 300-380 and 330-410.
  const A = { x: 300, y: 100, w: 80, h: 240 }, B = { x: 330, y: 110, w: 80, h: 240 };
  const att = await attachment([]);
  const sinks = att.sinks();
  await sinks.onFrame!({ cameraId: 'cam', frame: frame(0), detections: [person(A), person(B)], tracks: [track(1, A), track(2, B)], alerts: [] });
  const both = await att.privacy.submit(frame(0), 'alert-snapshot');
  assert.ok(both.released);
  let bands = bandsOf(both.image.regions);
  assert.equal(bands.length, 2, JSON.stringify(bands));
  assert.ok(hides(bands, 300, 100, 380, 160) && hides(bands, 330, 110, 410, 170), JSON.stringify(bands));
  // B seen once (its track is not confirmed yet): its raw detection still counts, however much it
  // overlaps A's track.
  await sinks.onFrame!({ cameraId: 'cam', frame: frame(1), detections: [person(A), person(B)], tracks: [track(1, A)], alerts: [] });
  const one = await att.privacy.submit(frame(1), 'alert-snapshot');
  assert.ok(one.released);
  bands = bandsOf(one.image.regions);
  assert.ok(hides(bands, 300, 100, 380, 160) && hides(bands, 330, 110, 410, 170), JSON.stringify(bands));
  await att.privacy.stop();
});

test('a detection counts once only while the track it was matched to is reported, and never for another camera', () => {
  const boxes = new FrameBoxes({ band: { labels: ['person'], top: 0, bottom: 0.3 } });
  const P = { x: 10, y: 10, w: 20, h: 60 }, car: Detection = { classId: 2, label: 'car', score: 0.43, box: { x: 100, y: 100, w: 80, h: 40 } };
  const labels = (ds: readonly Detection[]) => ds.map((d) => `${d.label}@${d.box.x}`);
  assert.deepEqual(labels(boxes.boxesFor('a', [person(P), car], [track(7, P)])), ['person@10', 'car@100']);
  // Track 7 no longer reported (lost): its detection is all that is left of that person.
  assert.deepEqual(labels(boxes.boxesFor('a', undefined, [])), ['person@10', 'car@100']);
  // A track whose voted label differs is not taken for the detection.
  assert.deepEqual(labels(boxes.boxesFor('a', [person(P)], [{ ...track(8, P), label: 'bicycle' }])), ['bicycle@10', 'person@10']);
  assert.deepEqual(labels(boxes.boxesFor('b', undefined, [])), []);
});
