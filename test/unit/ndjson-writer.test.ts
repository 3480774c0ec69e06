/**
 * The frame log (edge-agent run --out) waits for room in its stream, and fails, not hangs, when the
 * stream goes away under it: `edge-agent run --out - | head -1` with several cameras had one camera's
 * write meet EPIPE while another's waited for a 'drain' that a closed stream never emits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createWriteStream, type WriteStream } from 'node:fs';
import { NdjsonWriter } from '../../agent/src/pipeline/ndjson.js';

/** A stream whose writes complete only when `flush()` is called (a slow reader). */
function slowStream(): { stream: Writable; flush(): void; lines: string[] } {
  const pending: Array<() => void> = [];
  const lines: string[] = [];
  const stream = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); pending.push(cb); },
  });
  return { stream, lines, flush: () => { for (const cb of pending.splice(0)) cb(); } };
}

test('writes wait for the slow reader and go on when it has read', { timeout: 5000 }, async () => {
  const s = slowStream();
  const w = new NdjsonWriter('frames.ndjson', () => s.stream);
  const first = w.write({ camera: 'a', frame: 1 });
  const second = w.write({ camera: 'b', frame: 1 });
  let done = 0;
  void first.then(() => { done++; });
  void second.then(() => { done++; });
  await new Promise((r) => setImmediate(r));
  assert.equal(done, 0, 'both wait for room');
  // The stream hands its buffered line to the reader only after the first is read.
  s.flush();
  await new Promise((r) => setImmediate(r));
  s.flush();
  await Promise.all([first, second]);
  assert.deepEqual(s.lines.map((l) => JSON.parse(l) as unknown), [{ camera: 'a', frame: 1 }, { camera: 'b', frame: 1 }]);
});

test('writes waiting for room fail when the stream closes instead (a reader gone), and so does a later write', { timeout: 5000 }, async () => {
  const s = slowStream();
  const w = new NdjsonWriter('-', () => s.stream);
  const waiting = [w.write({ camera: 'a', frame: 1 }), w.write({ camera: 'b', frame: 1 })];
  await new Promise((r) => setImmediate(r));
  s.stream.destroy();
  for (const p of waiting) await assert.rejects(p, /the frame log \(stdout\) was closed/);
  await assert.rejects(w.write({ camera: 'a', frame: 2 }), /was closed/);
  const err = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  const s2 = slowStream();
  const w2 = new NdjsonWriter('-', () => s2.stream);
  const blocked = w2.write({ frame: 1 });
  await new Promise((r) => setImmediate(r));
  s2.stream.destroy(err);
  await assert.rejects(blocked, /EPIPE/);
  await assert.rejects(w2.write({ frame: 2 }), /EPIPE/);
});

test('a file that cannot be written fails the next write with its error, not the process; stop() then returns', { timeout: 5000 }, async () => {
  let file: WriteStream | undefined;
  const w = new NdjsonWriter('/nonexistent-dir/frames.ndjson', () => (file = createWriteStream('/nonexistent-dir/frames.ndjson')));
  w.start();
  // The open fails with no write waiting: before, an unhandled 'error' event ended the process.
  await new Promise<void>((r) => file!.on('close', () => r()));
  await assert.rejects(w.write({ frame: 1 }), /ENOENT/);
  await w.stop();
});

test('stop() after the stream closed returns at once; many blocked cameras share one wait for room', { timeout: 5000 }, async () => {
  const s = slowStream();
  const w = new NdjsonWriter('-', () => s.stream);
  const blocked = Array.from({ length: 12 }, (_v, i) => w.write({ camera: `c${i}`, frame: 1 }));
  await new Promise((r) => setImmediate(r));
  assert.equal(s.stream.listenerCount('drain'), 1, 'one drain listener for twelve waiting writes');
  s.stream.destroy();
  for (const p of blocked) await assert.rejects(p, /was closed/);
  await w.stop();
});
