/**
 * Twenty cameras through the real launcher, with UV_THREADPOOL_SIZE=16 in the environment (as the
 * unit and the wrapper set it before): each camera's GStreamer bus poll holds a pool thread for good,
 * so from 16 cameras on every camera stalled after a few frames, without an error, until killed.
 * bin/edge-agent.js now sizes the pool from the config's cameras.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gstSkip } from '../helpers/gst-child.js';

const MODEL = resolve('assets/models/coco-centernet/model.onnx');
const CAMERAS = 20;
const FRAMES = 20;

test(`edge-agent run on ${CAMERAS} cameras with UV_THREADPOOL_SIZE=16 set: every camera runs its ${FRAMES} frames to the end`, { timeout: 60_000 }, async (t) => {
  const skip = gstSkip || (existsSync(MODEL) ? false : 'assets missing: run scripts/setup.sh');
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'ef-many-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'agent.json');
  const cameras = Array.from({ length: CAMERAS }, (_, i) => ({ source: { kind: 'test', id: `cam${i}`, width: 64, height: 48, framerate: 10 } }));
  writeFileSync(config, JSON.stringify({ stateDir: join(dir, 'state'), detector: { model: MODEL, threads: 1 }, schedule: { mode: 'fixed', interval: 30 }, cameras }));
  const child = spawn(process.execPath, ['bin/edge-agent.js', 'run', '--config', config, '--frames', String(FRAMES), '--json'], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '16', EF_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(killer);
  assert.equal(code, 0, `finished (a starved pool hangs until killed): ${err.slice(-2000)}`);
  const summary = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; framesIn: number; processed: number; dropped: { capture: number } };
  assert.deepEqual([summary.ok, summary.framesIn, summary.processed + summary.dropped.capture], [true, CAMERAS * FRAMES, CAMERAS * FRAMES]);
});
