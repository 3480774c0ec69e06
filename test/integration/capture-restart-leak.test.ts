/**
 * A camera that keeps failing is restarted for as long as the agent runs (a camera that is down for a
 * weekend: one restart per 30 s at the default backoff). Each restart must give back what it took.
 * Real GStreamer in child processes, through GstFrameSource's own restart path and restart sleep.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gstSkip, runTsChild } from '../helpers/gst-child.js';

interface ChildResult { restarts: number; fdsGrowth: number; heapGrowthBytes: number; abortListeners: number; warnings: string[] }

const RESTARTS = 30;
const reconnect = { initialDelayMs: 1, maxDelayMs: 2 };
/** Nothing listens on port 1: rtspsrc's connection is refused, the camera's pipeline fails to start. */
const REFUSED_CAMERA = { kind: 'rtsp', id: 'down', url: 'rtsp://127.0.0.1:1/x', reconnect };

async function restartMany(source: Record<string, unknown>, restarts = RESTARTS): Promise<ChildResult> {
  const limitMs = 20_000;
  const { hung, code, stdout, stderr } = await runTsChild('test/helpers/gst-restart-child.ts', { args: [JSON.stringify(source), String(restarts)], limitMs });
  assert.equal(hung, false, `still running after ${limitMs} ms (stdout: ${stdout}, stderr: ${stderr})`);
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout.trim()) as ChildResult;
  assert.ok(result.restarts >= restarts, `restarted ${result.restarts} times`);
  return result;
}

test('restart sleeps leave no abort listener behind on the caller\'s signal', { skip: gstSkip }, async () => {
  const r = await restartMany(REFUSED_CAMERA);
  // One for frames()' own stop, one for a sleep in progress; before, one more per restart.
  assert.ok(r.abortListeners <= 2, `${r.abortListeners} abort listeners after ${r.restarts} restarts`);
  assert.deepEqual(r.warnings, []);
});

// gstreamer-superficial 1.7.4 freed no pipeline (patches/gstreamer-superficial+1.7.4.patch): each restart
// kept its bus's socketpair, 2 fds more with a pulled appsink, and the elements' memory; a camera that
// was down for a day at the 30 s backoff held ~5,800 fds. Installed by scripts/setup.sh.
const PATCH_HINT = 'if this is ~2 or more per restart, the gstreamer-superficial patch is not built: run ./scripts/setup.sh (or patches/apply.sh node_modules)';

test('a camera that cannot be reached is restarted without leaking its pipelines\' file descriptors', { skip: gstSkip }, async () => {
  const r = await restartMany(REFUSED_CAMERA);
  assert.ok(r.fdsGrowth <= 4, `open fds grew by ${r.fdsGrowth} over ${r.restarts} restarts; ${PATCH_HINT}`);
});

test('a pipeline that streams, then fails, is restarted without leaking its pipelines\' file descriptors', { skip: gstSkip }, async () => {
  const r = await restartMany({
    kind: 'pipeline', id: 'flaky', live: true, reconnect,
    pipeline: 'videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=100/1 ! identity error-after=3',
  });
  assert.ok(r.fdsGrowth <= 4, `open fds grew by ${r.fdsGrowth} over ${r.restarts} restarts; ${PATCH_HINT}`);
});

// The patched gstreamer-superficial still gave each findChild wrapper (one appsink per restart) its
// property accessors and pull() through Nan::SetAccessor and Nan::SetMethod, which make a new V8
// template per call; V8 keeps every template it instantiated, so each restart kept ~20 KB of JS heap
// for good (6 MB over these 300 restarts, ~58 MB a day for a camera down at the 30 s backoff).
test('a camera that cannot be reached is restarted without growing the JS heap', { skip: gstSkip }, async () => {
  const restarts = 300;
  const r = await restartMany(REFUSED_CAMERA, restarts);
  const growthMiB = r.heapGrowthBytes / 2 ** 20;
  assert.ok(growthMiB < 2, `the JS heap grew by ${growthMiB.toFixed(1)} MiB over ${r.restarts} restarts (${(r.heapGrowthBytes / r.restarts / 1024).toFixed(1)} KiB each); if this is ~20 KiB each, the gstreamer-superficial patch is not built: run ./scripts/setup.sh (or patches/apply.sh node_modules)`);
});
