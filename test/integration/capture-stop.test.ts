/**
 * Stopping a live camera while the main thread is busy. The stop sent EOS from the main thread while
 * the appsink was full (max-buffers=2, drop=false): GStreamer's EOS waits for the streaming thread,
 * which waited for an appsink pull that only the blocked main thread could make, so the agent hung
 * for good and ignored SIGTERM. Real GStreamer (videotestsrc), in a child process so that a hang
 * fails the test instead of stalling it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gstSkip, runTsChild } from '../helpers/gst-child.js';

const skip = gstSkip;

/** Runs the child; resolves with its output, or with `hung: true` once it has run for `limitMs`. */
const runChild = (env: Record<string, string>, limitMs: number) => runTsChild('test/helpers/gst-stop-child.ts', { env, limitMs });

for (const stop of ['frames', 'abort'] as const) {
  const how = stop === 'frames' ? 'at maxFrames (run --frames)' : 'by abort (SIGTERM)';
  test(`a live camera stopped ${how} while each frame holds the main thread 300 ms ends, and the process exits`, { skip }, async () => {
    for (let run = 0; run < 2; run++) {
      // 5 frames × 300 ms plus start-up is ~2 s here; 20 s is far beyond that, and before the fix
      // every run hung until killed.
      const r = await runChild({ STOP: stop, BUSY_MS: '300' }, 20_000);
      assert.equal(r.hung, false, `run ${run}: still running after 20 s (stdout: ${r.stdout}, stderr: ${r.stderr})`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout.trim()) as { frames: number }).frames, 5);
    }
  });
}
