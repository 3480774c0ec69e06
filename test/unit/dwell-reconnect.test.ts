/**
 * Across a camera reconnect only the timestamp advanced: the tracker and the rules carried on, so a
 * person seen for 2 s, a 120 s outage, and someone at the same spot afterwards made one dwell of
 * 122 s and an alert on the first frame after the reconnect. A new capture connection (the frame's
 * `segment`, or the source's restart count) now starts tracking and rule state afresh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { CameraPipeline } from '../../agent/src/pipeline/camera-pipeline.js';
import type { AlertEvent } from '../../agent/src/rules/events.js';
import type { FrameSourceStats } from '../../agent/src/capture/gst-source.js';
import type { Frame } from '../../agent/src/types.js';

const config = agentConfigValidator.parse({
  detector: { model: '/m/model.onnx' },
  cameras: [{
    source: { kind: 'rtsp', url: 'rtsp://10.0.0.21/s', id: 'door' },
    rules: { rules: [{ type: 'dwell', id: 'loiter', polygon: [{ x: 2, y: 2 }, { x: 318, y: 2 }, { x: 318, y: 238 }, { x: 2, y: 238 }], minDwellMs: 30_000, classes: ['person'] }] },
  }],
  schedule: { mode: 'fixed', interval: 1, motion: { enabled: false } },
}, 'test config');

const S = 1e9;
const FPS = 5;
const pixels = new Uint8Array(320 * 240 * 3);
// Someone stands in the zone in every frame.
const detector = {
  detectTimed: () => Promise.resolve({
    detections: [{ box: { x: 100, y: 60, w: 40, h: 140 }, score: 0.9, label: 'person', classId: 0 }],
    timings: { preprocessMs: 0, inferMs: 0, decodeMs: 0 },
  }),
};

interface Stretch { fromS: number; seconds: number; segment?: number; restartsBefore?: number }

/** Frames at FPS over each stretch of wall time (pts follows the wall clock, as PtsClock does across a reconnect). */
async function run(stretches: Stretch[]): Promise<{ alerts: AlertEvent[]; trackIds: Set<number> }> {
  const stats: FrameSourceStats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  const alerts: AlertEvent[] = [];
  const trackIds = new Set<number>();
  const p = new CameraPipeline({
    camera: config.cameras[0], detector, schedule: config.schedule, tracker: config.tracker,
    sinks: { onAlert: (a) => { alerts.push(a); }, onFrame: (r) => { for (const t of r.tracks) trackIds.add(t.trackId); } },
    source: {
      stats,
      async *frames() {
        let index = 0;
        for (const s of stretches) {
          if (s.restartsBefore) { stats.errors += s.restartsBefore; stats.restarts += s.restartsBefore; }
          for (let k = 0; k < s.seconds * FPS; k++) {
            const atNs = Math.round((s.fromS + k / FPS) * S);
            stats.framesIn++;
            yield { width: 320, height: 240, data: pixels, index: index++, ptsNs: atNs, capturedAtNs: atNs, sourceId: 'door', ...(s.segment !== undefined ? { segment: s.segment } : {}) } satisfies Frame;
          }
        }
      },
    },
  });
  await p.run();
  return { alerts, trackIds };
}

test('a camera outage does not count as time in a dwell zone (the new connection numbered by segment)', async () => {
  const { alerts, trackIds } = await run([{ fromS: 0, seconds: 2, segment: 0 }, { fromS: 122, seconds: 2, segment: 1 }]);
  assert.deepEqual(alerts.map((a) => `${a.kind} ${a.dwellMs}`), [], 'seen 4 s in all: no 30 s dwell');
  assert.equal(trackIds.size, 2, 'the person after the gap is a new track');
});

test('a source that does not number its connections: its restart count marks the new one', async () => {
  const { alerts } = await run([{ fromS: 0, seconds: 2 }, { fromS: 122, seconds: 2, restartsBefore: 1 }]);
  assert.deepEqual(alerts.map((a) => `${a.kind} ${a.dwellMs}`), []);
});

test('after a reconnect the dwell counts from the first frame of the new connection', async () => {
  const { alerts } = await run([{ fromS: 0, seconds: 2, segment: 0 }, { fromS: 122, seconds: 32, segment: 1 }]);
  assert.deepEqual(alerts.map((a) => [a.kind, a.dwellMs, a.ptsNs / S]), [['dwell', 30_000, 152]]);
});

test('without a reconnect the same presence still alerts as before', async () => {
  const { alerts } = await run([{ fromS: 0, seconds: 32, segment: 0 }]);
  assert.deepEqual(alerts.map((a) => [a.kind, a.dwellMs]), [['dwell', 30_000]]);
});

test('the detector runs on the first frame of a new connection, whose person is tracked at once', async () => {
  const cfg = agentConfigValidator.parse({ detector: { model: '/m/model.onnx' }, cameras: [{ source: { kind: 'rtsp', url: 'rtsp://10.0.0.21/s', id: 'door' } }], schedule: { mode: 'fixed', interval: 10, motion: { enabled: false } } }, 'test config');
  const seen: Array<{ segment?: number; detected: boolean; tracks: number }> = [];
  const frames: Frame[] = [];
  for (let i = 0; i < 25; i++) {
    const segment = i < 13 ? 0 : 1;
    frames.push({ width: 320, height: 240, data: pixels, index: i, ptsNs: i * 2e8 + segment * 60 * S, capturedAtNs: i * 2e8 + segment * 60 * S, sourceId: 'door', segment });
  }
  const p = new CameraPipeline({
    camera: cfg.cameras[0], detector, schedule: cfg.schedule, tracker: cfg.tracker,
    sinks: { onFrame: (r) => { seen.push({ segment: r.frame.segment, detected: r.detections !== undefined, tracks: r.tracks.length }); } },
    source: { stats: { framesIn: 0, dropped: 0, restarts: 0, errors: 0 }, async *frames() { yield* frames; } },
  });
  await p.run();
  const first = seen[13];
  assert.deepEqual(first, { segment: 1, detected: true, tracks: 1 }, 'frame 13 is off the 10-frame schedule, detected all the same');
});
