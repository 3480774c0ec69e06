/**
 * A raw pipeline (or file, or test) source whose pipeline cannot start. gstreamer-superficial's
 * play() drops the failed state change; only camera kinds checked for it, so such a source ended
 * 3 s later as if its stream had finished, and `edge-agent run` exited 0 having processed nothing.
 * It now fails with GStreamer's reason, under the source's restart policy. Real GStreamer in child
 * processes (which must also exit on their own).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gstSkip, runTsChild } from '../helpers/gst-child.js';
import { runCli } from '../helpers/cli.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';

interface ChildResult { frames: number; error: { code: string; message: string } | null; stats: { restarts: number; errors: number; lastError?: string } }

async function runSource(source: Record<string, unknown>, limitMs = 20_000): Promise<ChildResult> {
  const { hung, code, stdout, stderr } = await runTsChild('test/helpers/gst-source-child.ts', { args: [JSON.stringify(source)], limitMs });
  assert.equal(hung, false, `still running after ${limitMs} ms (stdout: ${stdout}, stderr: ${stderr})`);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout.trim()) as ChildResult;
}

// v4l2src fails NULL→READY on /dev/null ("This isn't a device" or "It isn't a v4l2 driver").
const CANNOT_START = 'v4l2src device=/dev/null ! decodebin';
const GST_REASON = /isn't a (device|v4l2 driver)/;

test('a raw pipeline that cannot start fails with GStreamer\'s reason, restarted by its policy, not ended as a finished stream', { skip: gstSkip }, async () => {
  const r = await runSource({ kind: 'pipeline', id: 'raw', pipeline: CANNOT_START, reconnect: { maxRetries: 1, initialDelayMs: 10 } });
  assert.equal(r.frames, 0);
  assert.equal(r.error?.code, 'E_CAPTURE');
  assert.match(r.error?.message ?? '', /^Camera source "raw" failed: the pipeline could not start: /);
  assert.match(r.error?.message ?? '', GST_REASON);
  assert.match(r.error?.message ?? '', /gave up after 1 restart/);
  assert.equal(r.stats.restarts, 1);
});

test('an empty stream from a non-camera source still ends as an end of stream, not a failed start', { skip: gstSkip }, async () => {
  const r = await runSource({ kind: 'pipeline', live: false, pipeline: 'videotestsrc num-buffers=0 ! video/x-raw,width=64,height=48' });
  assert.deepEqual([r.frames, r.error, r.stats.errors], [0, null, 0]);
});

const MODEL = resolve('assets/models/coco-centernet/model.onnx');

test('edge-agent run on a pipeline that cannot start exits non-zero naming the camera and the cause', { skip: gstSkip || missingAssets(MODEL) }, async () => {
  const dir = tempDirForFile('ef-capture-start-');
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir, 'state'),
    detector: { model: MODEL },
    cameras: [{ source: { kind: 'pipeline', id: 'raw', pipeline: CANNOT_START, reconnect: { maxRetries: 0 } } }],
  }));
  const r = await runCli('edge-agent', ['run', '--config', config], { timeoutMs: 60_000 });
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /Camera source "raw" failed: the pipeline could not start: .*isn't a (device|v4l2 driver)/);
});
