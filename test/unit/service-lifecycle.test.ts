import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { ServiceLifecycle } from '../../agent/src/service/lifecycle.js';
import { ServiceNotifier } from '../../agent/src/service/notifier.js';
import type { NotifyTransport } from '../../agent/src/service/notify-transport.js';
import { waitFor } from '../helpers/wait.js';

const silent = pino({ level: 'silent' });

function setup(now?: () => number) {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const messages: string[] = [];
  const transport: NotifyTransport = { kind: 'unix-dgram', send: (m) => { messages.push(m); return Promise.resolve(); }, close: () => undefined };
  const notifier = new ServiceNotifier({ transport, log: silent });
  const lc = new ServiceLifecycle({ signals, notifier, exit: (c) => exits.push(c), log: silent, now });
  return { signals, exits, messages, lc };
}

test('SIGTERM runs shutdown steps once, in order, after STOPPING=1, and exits 0', async () => {
  const { signals, exits, messages, lc } = setup();
  const order: string[] = [];
  lc.onShutdown(() => { order.push(`capture:${messages.at(-1) ?? ''}`); }, { name: 'capture' });
  lc.onShutdown(async () => { await new Promise((r) => setTimeout(r, 5)); order.push('inference'); }, { name: 'inference' });
  lc.onShutdown(() => { order.push('outbox'); }, { name: 'outbox' });
  lc.start();
  lc.start();
  assert.equal(signals.listenerCount('SIGTERM'), 1);
  signals.emit('SIGTERM');
  signals.emit('SIGTERM');
  const result = await lc.shutdown();
  assert.deepEqual(order, ['capture:STOPPING=1', 'inference', 'outbox']);
  assert.deepEqual(exits, [0]);
  assert.equal(result.reason, 'SIGTERM');
  assert.equal(lc.stats.ignoredSignals, 1);
  assert.equal(signals.listenerCount('SIGTERM'), 0, 'listeners removed after shutdown');
});

test('a step past its bound is abandoned (exit 0 within the bound); a throwing step makes exit 1', async () => {
  const { exits, lc } = setup();
  let outboxFlushed = false;
  lc.onShutdown(() => new Promise<void>(() => undefined), { name: 'hung-inference', timeoutMs: 50 });
  lc.onShutdown(() => { outboxFlushed = true; }, { name: 'outbox' });
  const t0 = Date.now();
  const r = await lc.shutdown('request');
  // The step's own 50 ms bound, not the lifecycle's default (5 s): 2 s tells them apart on a loaded machine.
  assert.ok(Date.now() - t0 < 2000, 'bounded by the step\'s timeoutMs');
  assert.deepEqual(r.timedOut, ['hung-inference']);
  assert.ok(outboxFlushed, 'later steps still run after an abandoned one');
  assert.deepEqual(exits, [0]);

  const b = setup();
  b.lc.onShutdown(() => { throw new Error('disk full'); }, { name: 'outbox' });
  const r2 = await b.lc.shutdown('request');
  assert.deepEqual(r2.failed, ['outbox']);
  assert.deepEqual(b.exits, [1]);
});

test('second SIGINT during a slow shutdown exits 130 at once; the same Ctrl-C relayed by a wrapper does not', async () => {
  let clock = 1_000_000;
  const { signals, exits, lc } = setup(() => clock);
  let release: (() => void) | undefined;
  lc.onShutdown(() => new Promise<void>((r) => { release = r; }), { timeoutMs: 5000 });
  lc.start();
  signals.emit('SIGINT');
  clock += 5; // tsx / npm relay their copy of the terminal's SIGINT: it cut every `npm start` short
  signals.emit('SIGINT');
  assert.deepEqual(exits, [], 'one Ctrl-C, delivered twice');
  clock += 1500;
  signals.emit('SIGINT');
  assert.deepEqual(exits, [130]);
  await waitFor('the shutdown step to start', () => release);
  release?.();
  await lc.shutdown();
});

test('SIGHUP reloads between RELOADING=1 and READY=1, never overlapping; extra SIGHUPs coalesce into one', async () => {
  const { signals, messages, lc } = setup();
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  lc.onReload(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((r) => setTimeout(r, 10));
    running--;
    runs++;
  });
  lc.start();
  signals.emit('SIGHUP');
  signals.emit('SIGHUP');
  signals.emit('SIGHUP');
  await lc.reload();
  assert.equal(runs, 2, 'one running + one coalesced');
  assert.equal(maxRunning, 1);
  assert.equal(messages.filter((m) => m.startsWith('RELOADING=1\nMONOTONIC_USEC=')).length, 2);
  assert.equal(messages.at(-1), 'READY=1\nSTATUS=reloaded');
  lc.stop();
});

test('a failing reload step is reported and counted; the service stays up', async () => {
  const { messages, lc } = setup();
  lc.onReload(() => { throw new Error('bad config'); });
  await lc.reload();
  assert.equal(lc.stats.reloadFailures, 1);
  assert.equal(messages.at(-1), 'READY=1\nSTATUS=reload failed; see journal');
});
