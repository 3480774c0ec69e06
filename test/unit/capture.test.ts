import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameQueue } from '../../agent/src/capture/frame-queue.js';
import { buildPipeline, gstQuote } from '../../agent/src/capture/pipelines.js';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource, PtsClock, type GstModule } from '../../agent/src/capture/gst-source.js';

const source = compileSchema(SourceConfig);

test('drop-oldest queue keeps the newest frames and counts each drop', async () => {
  const dropped: number[] = [];
  const q = new FrameQueue<number>(3, 'drop-oldest', (n) => dropped.push(n));
  for (let i = 0; i < 10; i++) await q.push(i);
  q.end();
  const got: number[] = [];
  for (let v = await q.shift(); v !== undefined; v = await q.shift()) got.push(v);
  assert.deepEqual(got, [7, 8, 9]);
  assert.equal(q.dropped, 7);
  assert.deepEqual(dropped, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(q.pushed, 10);
});

test('block queue applies back-pressure and drops nothing', async () => {
  const q = new FrameQueue<number>(2, 'block');
  const producer = (async () => { for (let i = 0; i < 20; i++) await q.push(i); q.end(); })();
  const got: number[] = [];
  for (let v = await q.shift(); v !== undefined; v = await q.shift()) got.push(v);
  await producer;
  assert.equal(got.length, 20);
  assert.equal(q.dropped, 0);
});

test('pipelines end in packed RGB on an appsink named sink, paths quoted', () => {
  const file = buildPipeline(source.parse({ kind: 'file', path: '/data/my "cam".mp4' }, 's'));
  assert.match(file, /^filesrc location="\/data\/my \\"cam\\".mp4" ! decodebin ! videoconvert ! video\/x-raw,format=RGB ! appsink name=sink .*sync=false/);
  assert.match(buildPipeline(source.parse({ kind: 'file', path: 'a.avi', realtime: true }, 's')), /sync=true/);
  assert.match(buildPipeline(source.parse({ kind: 'rtsp', url: 'rtsp://10.0.0.9/stream' }, 's')), /^rtspsrc location="rtsp:\/\/10.0.0.9\/stream" latency=200 protocols=tcp ! decodebin/);
  assert.match(buildPipeline(source.parse({ kind: 'v4l2', width: 640, height: 480 }, 's')), /^v4l2src device="\/dev\/video0" ! decodebin ! videoconvert ! videoscale ! video\/x-raw,format=RGB,width=640,height=480/);
  assert.match(buildPipeline(source.parse({ kind: 'jetson-csi' }, 's')), /^nvarguscamerasrc sensor-id=0 ! video\/x-raw\(memory:NVMM\),width=1920,height=1080,framerate=30\/1 ! nvvidconv/);
  assert.match(buildPipeline(source.parse({ kind: 'file', path: 'a.mp4' }, 's'), { decode: 'parsebin ! nvv4l2decoder ! nvvidconv' }), /parsebin ! nvv4l2decoder/);
  // The board's hardware decoder is for compressed streams (files, RTSP), not a USB camera's raw frames.
  assert.match(buildPipeline(source.parse({ kind: 'v4l2' }, 's'), { decode: 'parsebin ! nvv4l2decoder ! nvvidconv' }), /^v4l2src device="\/dev\/video0" ! decodebin ! videoconvert/);
  const raw = 'videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink';
  assert.equal(buildPipeline(source.parse({ kind: 'pipeline', pipeline: raw }, 's')), raw);
  assert.equal(gstQuote('a\\b'), '"a\\\\b"');
});

test('a live source that fails is restarted with jittered backoff, then gives up with a clear error', async () => {
  // A stand-in GStreamer whose pipelines always fail on the bus: exercises the restart logic only.
  let created = 0;
  const gst: GstModule = {
    Pipeline: class {
      private bus?: (m: Record<string, unknown>) => void;
      private pending?: (b: Buffer | null, c: Record<string, unknown>) => void;
      constructor() { created++; }
      play() { setImmediate(() => this.bus?.({ type: 'error', message: 'Could not open resource for reading.' })); }
      stop() { const p = this.pending; this.pending = undefined; p?.(null, {}); }
      sendEOS() { this.stop(); }
      pollBus(cb: (m: Record<string, unknown>) => void) { this.bus = cb; }
      findChild() { return { pull: (cb: (b: Buffer | null, c: Record<string, unknown>) => void) => { this.pending = cb; } }; }
    },
  };
  const delays: number[] = [];
  const src = new GstFrameSource({
    config: source.parse({ kind: 'rtsp', url: 'rtsp://cam/1', reconnect: { maxRetries: 3, initialDelayMs: 100, maxDelayMs: 1000 } }, 's'),
    gst, random: () => 0.5, sleep: async (ms) => { delays.push(ms); },
  });
  await assert.rejects(async () => { for await (const _ of src.frames()) { /* none */ } }, /Could not open resource.*gave up after 3 restarts/);
  assert.equal(created, 4);
  assert.deepEqual(delays, [75, 150, 300]);
  assert.equal(src.stats.restarts, 3);
  assert.equal(src.stats.errors, 4);
});

/**
 * A GStreamer stand-in for a camera that sends `frames` 2×2 frames per connection with the caps
 * `capsOf(connection)` gives, then hangs up (EOS on the bus). `connections()` counts the pipelines made.
 */
function hangingUpCamera(frames: number, capsOf: (connection: number) => Record<string, unknown>): { gst: GstModule; connections: () => number; reset: () => void } {
  let created = 0;
  const gst: GstModule = {
    Pipeline: class {
      private bus?: (m: Record<string, unknown>) => void;
      private pending?: (b: Buffer | null, c: Record<string, unknown>) => void;
      private sent = 0;
      private readonly caps = { width: 2, height: 2, ...capsOf(created++) };
      play() { /* frames flow from pull() */ }
      stop() { const p = this.pending; this.pending = undefined; p?.(null, {}); }
      sendEOS() { setImmediate(() => this.bus?.({ type: 'eos' })); }
      pollBus(cb: (m: Record<string, unknown>) => void) { this.bus = cb; }
      findChild() {
        return { pull: (cb: (b: Buffer | null, c: Record<string, unknown>) => void) => {
          if (this.sent++ < frames) setImmediate(() => cb(Buffer.alloc(2 * 2 * 4), this.caps));
          else { this.pending = cb; setImmediate(() => this.bus?.({ type: 'eos' })); }
        } };
      }
    },
  };
  return { gst, connections: () => created, reset: () => { created = 0; } };
}

test('a camera that ends its stream (EOS) is reconnected; a file or test source that ends is done', async () => {
  // rtspsrc posts EOS, not an error, when the camera closes the connection: the run ended with exit 0
  // and restarts 0, and under systemd (Restart=on-failure) the camera was gone for good.
  const camera = hangingUpCamera(1, () => ({}));
  const gst = camera.gst;
  const run = async (cfg: unknown) => {
    camera.reset();
    const src = new GstFrameSource({ config: source.parse(cfg, 's'), gst, random: () => 0.5, sleep: async () => undefined });
    let frames = 0;
    for await (const _ of src.frames()) frames++;
    return { frames, created: camera.connections(), restarts: src.stats.restarts };
  };
  assert.deepEqual(await run({ kind: 'rtsp', url: 'rtsp://cam/1', maxFrames: 3 }), { frames: 3, created: 3, restarts: 2 });
  assert.deepEqual(await run({ kind: 'file', path: 'a.mp4' }), { frames: 1, created: 1, restarts: 0 });
  assert.deepEqual(await run({ kind: 'test', live: true }), { frames: 1, created: 1, restarts: 0 });
});

// The frame index carried on across a reconnect while its times were index / the new rate: a camera back
// at 30 fps after 9000 frames at 15 fps went from 599.9 s to 300 s, and the rules' cooldowns and dwell
// times (computed from these times) went negative and held alerts back for hours. Cameras are now timed
// by the capture clock; a frame-timed source (a file restarted after an error) still must not go back.
test('presentation times keep increasing across a reconnect at another frame rate', () => {
  const perConnection = 40;
  const clock = new PtsClock(0);
  const pts: number[] = [];
  let index = 0;
  for (let i = 0; i < perConnection; i++) pts.push(clock.at(index++, 15, 1e9 + i * 1e6));
  clock.newConnection();
  for (let i = 0; i < perConnection; i++) pts.push(clock.at(index++, 30, 2e9 + i * 1e6));
  assert.equal(pts[perConnection - 1], Math.round(((perConnection - 1) * 1e9) / 15), 'the first connection is timed by index and rate');
  for (let i = 1; i < pts.length; i++) assert.ok(pts[i] > pts[i - 1], `frame ${i}: ${pts[i - 1]} → ${pts[i]}`);
  assert.equal(pts[perConnection + 1] - pts[perConnection], Math.round(1e9 / 30), 'the new connection runs at its own rate');
});
