import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Outbox } from '../../agent/src/outbox/outbox.js';
import { Backoff } from '../../agent/src/link/backoff.js';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ef-outbox-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'outbox.sqlite');
}

test('outbox keeps order across reopen, acks once, ignores duplicate ids', (t) => {
  const path = tmp(t);
  const a = new Outbox({ path });
  a.start();
  for (let i = 0; i < 5; i++) a.put({ id: `m${i}`, topic: 't', payload: `p${i}` });
  a.put({ id: 'm2', topic: 't', payload: 'again' });
  assert.equal(a.stats().pending, 5);
  a.stop();
  a.stop();
  const b = new Outbox({ path });
  b.start();
  assert.deepEqual(b.peek(10).map((e) => e.id), ['m0', 'm1', 'm2', 'm3', 'm4']);
  assert.equal(b.peek(10)[2].payload.toString(), 'p2');
  assert.equal(b.ack('m0'), true);
  assert.equal(b.ack('m0'), false);
  const first = b.peek(2);
  assert.deepEqual(first.map((e) => e.id), ['m1', 'm2']);
  assert.deepEqual(b.peek(10, first[1].seq).map((e) => e.id), ['m3', 'm4']);
  assert.equal(b.stats().pending, 4);
  b.stop();
});

test('outbox is bounded: the oldest entries are dropped and counted', (t) => {
  const o = new Outbox({ path: tmp(t), maxEntries: 3 });
  o.start();
  for (let i = 0; i < 5; i++) o.put({ id: `m${i}`, topic: 't', payload: 'x' });
  assert.deepEqual(o.peek(10).map((e) => e.id), ['m2', 'm3', 'm4']);
  assert.equal(o.stats().droppedFull, 2);
  o.stop();
});

test('a damaged outbox file is moved aside and a new one started, not a start failure', (t) => {
  // A file cut short by power loss, and one that is no database at all; both stopped the agent at start.
  for (const damage of ['truncated', 'garbage'] as const) {
    const path = tmp(t);
    const a = new Outbox({ path });
    a.start();
    for (let i = 0; i < 200; i++) a.put({ id: `m${i}`, topic: 't', payload: 'x'.repeat(2000) });
    a.stop();
    const bytes = readFileSync(path);
    if (damage === 'truncated') writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    else writeFileSync(path, Buffer.concat([Buffer.from('not a database at all '.repeat(10)), bytes.subarray(220)]));
    const b = new Outbox({ path, now: () => 1234 });
    b.start();
    assert.equal(b.quarantined, `${path}.corrupt-1234`, damage);
    assert.ok(existsSync(`${path}.corrupt-1234`), `${damage}: the damaged file is kept for inspection`);
    assert.equal(b.stats().pending, 0);
    b.put({ id: 'after', topic: 't', payload: 'y' });
    assert.deepEqual(b.peek(5).map((e) => e.id), ['after']);
    b.stop();
  }
  // A place that cannot hold the file is still an error that says so (not a file to move aside).
  const blocker = tmp(t);
  writeFileSync(blocker, 'a file where the state directory should be');
  assert.throws(() => new Outbox({ path: join(blocker, 'outbox.sqlite') }).start(), /ENOTDIR|EEXIST|Could not open the outbox/);
});

test('backoff grows with equal jitter and resets', () => {
  const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => lo.nextDelayMs()), [50, 100, 200, 400, 500]);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => hi.nextDelayMs()), [100, 200, 400, 800, 1000]);
  lo.reset();
  assert.equal(lo.nextDelayMs(), 50);
});
