/**
 * A v4l2 camera whose device cannot be opened. gstreamer-superficial's play() drops the failed state
 * change, the appsink then ends at once, and the agent reported "the camera ended its stream (end of
 * stream from a live camera)" for a missing device or /dev/null alike, and retried that for ever.
 * The error now names the device and what is wrong with it, and is still retried with backoff (a USB
 * camera may come back). Real GStreamer in a child process, which must also exit on its own (no bus
 * poll left waiting).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceProblem, type DeviceFs } from '../../agent/src/capture/device-check.js';
import { gstSkip, runTsChild } from '../helpers/gst-child.js';

const skip = gstSkip;

interface ChildResult { frames: number; error: { code: string; message: string } | null; stats: { restarts: number; errors: number; lastError?: string }; delays: number[] }

async function runSource(source: Record<string, unknown>, limitMs = 20_000): Promise<ChildResult> {
  const { hung, code, stdout, stderr } = await runTsChild('test/helpers/gst-source-child.ts', { args: [JSON.stringify(source)], limitMs });
  assert.equal(hung, false, `still running after ${limitMs} ms (stdout: ${stdout}, stderr: ${stderr})`);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout.trim()) as ChildResult;
}

test('a v4l2 device that does not exist: the error says so, names the device, and the camera is retried with backoff', { skip }, async () => {
  const r = await runSource({ kind: 'v4l2', id: 'usb', device: '/dev/video-nonexistent', reconnect: { maxRetries: 2 } });
  assert.equal(r.frames, 0);
  assert.equal(r.stats.restarts, 2, 'retried (a USB camera may come back)');
  assert.equal(r.delays.length, 2);
  assert.equal(r.error?.code, 'E_CAPTURE');
  const message = r.error?.message ?? '';
  assert.match(message, /^Camera source "usb" failed: could not open the camera device \/dev\/video-nonexistent: no such device \(is the camera plugged in/);
  assert.match(message, /GStreamer: Cannot identify device '\/dev\/video-nonexistent'/);
  assert.match(message, /gave up after 2 restarts/);
  assert.doesNotMatch(message, /end of stream|ended its stream/);
  assert.match(r.stats.lastError ?? '', /^could not open the camera device \/dev\/video-nonexistent: no such device/);
});

test('/dev/null as a v4l2 device: the error names the device and GStreamer\'s reason, not an end of stream', { skip }, async () => {
  const r = await runSource({ kind: 'v4l2', id: 'usb', device: '/dev/null', reconnect: { maxRetries: 1 } });
  assert.equal(r.stats.restarts, 1);
  const message = r.error?.message ?? '';
  assert.match(message, /^Camera source "usb" failed: could not open the camera device \/dev\/null\b/);
  // v4l2src: "This isn't a device" where /dev/null is not a character device (some containers),
  // "It isn't a v4l2 driver" where it is.
  assert.match(message, /GStreamer: .*isn't a (device|v4l2 driver)/);
  assert.doesNotMatch(message, /end of stream|ended its stream/);
});

test('a v4l2 device that opens as far as the file system goes: nothing to add to GStreamer\'s message', () => {
  const fs: DeviceFs = { stat: () => ({ isCharacterDevice: () => true }), accessReadWrite: () => undefined };
  assert.equal(deviceProblem('/dev/video0', fs), undefined);
});

test('a v4l2 device the agent\'s user may not open: permission denied, and the `video` group to join', () => {
  const eacces = () => { throw Object.assign(new Error("EACCES: permission denied, access '/dev/video0'"), { code: 'EACCES' }); };
  const fs: DeviceFs = { stat: () => ({ isCharacterDevice: () => true }), accessReadWrite: eacces };
  assert.match(deviceProblem('/dev/video0', fs) ?? '', /^permission denied: the agent's user cannot open \/dev\/video0 for reading and writing \(add it to the `video` group/);
  // A device in a directory the user cannot search fails at stat already.
  assert.match(deviceProblem('/dev/video0', { ...fs, stat: eacces }) ?? '', /^permission denied: .*`video` group/);
});

test('a regular file or a missing path as a v4l2 device, on the real file system', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-v4l2-'));
  try {
    const file = join(dir, 'video0');
    writeFileSync(file, '');
    assert.match(deviceProblem(file) ?? '', /^it is not a video device/);
    assert.match(deviceProblem(join(dir, 'video7')) ?? '', /^no such device/);
    assert.match(deviceProblem(join(file, 'x')) ?? '', /^no such device/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
