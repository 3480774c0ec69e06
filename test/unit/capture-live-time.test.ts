/**
 * A live source is timed by the capture clock, not by frame number ÷ advertised rate: a camera that
 * delivers fewer frames than its header claims (UDP loss, variable rate, a wrong header) slowed the
 * clock rules use, and a 30 s dwell fired after 60 s at half the frames. Files keep frame timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { runTsChild, gstSkip } from '../helpers/gst-child.js';
import { standInCamera } from '../helpers/gst-stand-in.js';

const source = compileSchema(SourceConfig);
const MS = 1e6;

/** A source whose caps say 30 fps and that sends `frames` 2×2 frames on each connection, then ends. */
const thirtyFpsHeader = (frames: number) => standInCamera({ perConnection: frames, framerate: '30/1' });

/** pts of each frame of `cfg`, with a capture clock that advances 66.7 ms a frame (15 fps arriving). */
async function ptsAtHalfRate(cfg: Record<string, unknown>, frames: number): Promise<number[]> {
  let now = 5_000 * MS;
  const nowNs = () => { const t = now; now += Math.round(1e9 / 15); return t; };
  const src = new GstFrameSource({ config: source.parse(cfg, 's'), gst: thirtyFpsHeader(frames), nowNs });
  const pts: number[] = [];
  for await (const f of src.frames()) pts.push(f.ptsNs);
  return pts;
}

test('a camera that delivers half the frames its header claims: 30 s of frames span 30 s of pts, not 15', async () => {
  for (const cfg of [{ kind: 'rtsp', url: 'rtsp://cam/1', maxFrames: 451 }, { kind: 'v4l2', maxFrames: 451 }, { kind: 'pipeline', pipeline: 'x', live: true }, { kind: 'test', live: true }]) {
    const pts = await ptsAtHalfRate(cfg, 451); // 450 intervals at 15 fps: 30 s
    assert.equal(pts.length, 451, cfg.kind);
    assert.ok(Math.abs((pts[450] - pts[0]) / 1e9 - 30) < 0.01, `${cfg.kind}: ${(pts[450] - pts[0]) / 1e9} s`);
    for (let i = 1; i < pts.length; i++) assert.ok(pts[i] > pts[i - 1]);
  }
});

test('a file (and a non-live test source) is timed by frame number and its rate, however fast it is read', async () => {
  for (const cfg of [{ kind: 'file', path: 'a.mp4' }, { kind: 'file', path: 'a.mp4', realtime: true }, { kind: 'test', live: false }]) {
    const pts = await ptsAtHalfRate(cfg, 31);
    assert.equal(pts[0], 0);
    assert.equal(pts[30], 1e9, `${JSON.stringify(cfg)}: frame 30 at 30 fps is at 1 s`);
  }
});

test('real GStreamer: a live source that loses half its frames is timed by the clock', { skip: gstSkip, timeout: 30_000 }, async () => {
  // Caps say 30 fps; identity drops each buffer with probability 0.5.
  const pipeline = 'videotestsrc is-live=true ! video/x-raw,framerate=30/1,width=32,height=24 ! identity drop-probability=0.5';
  const r = await runTsChild('test/helpers/gst-pts-child.ts', { args: [JSON.stringify({ kind: 'pipeline', pipeline, live: true, maxFrames: 20 })], limitMs: 25_000 });
  assert.equal(r.hung, false, r.stderr);
  const { frames } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { frames: Array<[number, number, number]> };
  assert.equal(frames.length, 20);
  const [, firstPts, firstAt] = frames[0];
  const [, lastPts, lastAt] = frames[19];
  const spanMs = (lastPts - firstPts) / MS;
  const wallMs = (lastAt - firstAt) / MS;
  assert.ok(Math.abs(spanMs - wallMs) < 1, `pts span ${spanMs} ms, captured over ${wallMs} ms`);
  // 19 intervals at 30 fps would be 633 ms; with half the frames lost it took about twice that.
  assert.ok(spanMs > 700, `pts span ${spanMs} ms`);
});
