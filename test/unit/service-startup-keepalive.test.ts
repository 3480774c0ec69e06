/**
 * StartupKeepalive: while models load, systemd is asked for more start-up time (EXTEND_TIMEOUT_USEC)
 * with a STATUS= line; a TensorRT engine build is named; bounded; nothing once READY or stopping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ServiceNotifier, type NotifierTimers } from '../../agent/src/service/notifier.js';
import { StartupKeepalive } from '../../agent/src/service/startup-keepalive.js';
import type { NotifyTransport } from '../../agent/src/service/notify-transport.js';
import { publishEngineBuild } from '../../platform-adapters/tensorrt/progress.js';

const silent = pino({ level: 'silent' });

class RecordingTransport implements NotifyTransport {
  readonly kind = 'unix-dgram' as const;
  readonly messages: string[] = [];
  send(message: string): Promise<void> {
    this.messages.push(message);
    return Promise.resolve();
  }
  close(): void {}
}

/** Timers driven by hand, and a clock the test moves. */
function manual(): NotifierTimers & { nowMs: number; fire(): Promise<void>; live: number } {
  const fns = new Map<number, () => void>();
  let next = 1;
  const t = {
    nowMs: 0,
    get live() { return fns.size; },
    setInterval(fn: () => void, _ms: number) { fns.set(next, fn); return next++; },
    clearInterval(h: unknown) { fns.delete(h as number); },
    monotonicUsec: () => 1n,
    async fire() {
      for (const fn of [...fns.values()]) fn();
      await new Promise((r) => setImmediate(r));
    },
  };
  return t;
}

function deferred(): { promise: Promise<string>; resolve: (v: string) => void; reject: (e: Error) => void } {
  let resolve!: (v: string) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<string>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

function setup(opts: { maxMs?: number } = {}) {
  const tr = new RecordingTransport();
  const timers = manual();
  const notifier = new ServiceNotifier({ transport: tr, timers, log: silent });
  const keepalive = new StartupKeepalive({ notifier, timers, monotonicNow: () => timers.nowMs, intervalMs: 30_000, extendMs: 60_000, restOfStartMs: 120_000, maxMs: opts.maxMs, log: silent });
  return { tr, timers, notifier, keepalive };
}

test('while models load (a 20 min engine build), systemd gets EXTEND_TIMEOUT_USEC every tick and a STATUS naming the build; the rest of the start gets 120 s', async () => {
  const { tr, timers, keepalive } = setup();
  const load = deferred();
  const result = keepalive.during('loading models', () => load.promise);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(tr.messages, ['EXTEND_TIMEOUT_USEC=60000000\nSTATUS=loading models (0 s so far)']);

  timers.nowMs = 5_000;
  publishEngineBuild({ kind: 'start', modelPath: '/var/lib/edge-agent/models/factory/model.onnx', precision: 'fp16', timeoutMs: 30 * 60_000 });
  await new Promise((r) => setImmediate(r));
  assert.equal(tr.messages.at(-1), 'EXTEND_TIMEOUT_USEC=60000000\nSTATUS=building the TensorRT fp16 engine for /var/lib/edge-agent/models/factory/model.onnx with trtexec (0 s so far, at most 30 min; once per model)');

  // 20 minutes of ticks every 30 s: each asks for 60 s more, so systemd never reaches its timeout.
  for (let s = 35; s <= 20 * 60 + 5; s += 30) {
    timers.nowMs = s * 1000;
    await timers.fire();
  }
  const extends_ = tr.messages.filter((m) => m.startsWith('EXTEND_TIMEOUT_USEC=60000000\n'));
  assert.equal(extends_.length, 2 + 40);
  assert.match(tr.messages.at(-1)!, /STATUS=building the TensorRT fp16 engine .* \(20 min so far, at most 30 min; once per model\)$/);

  publishEngineBuild({ kind: 'end', modelPath: '/var/lib/edge-agent/models/factory/model.onnx', precision: 'fp16', durationMs: 20 * 60_000, ok: true });
  timers.nowMs += 30_000;
  await timers.fire();
  assert.match(tr.messages.at(-1)!, /^EXTEND_TIMEOUT_USEC=60000000\nSTATUS=loading models \(20 min so far\)$/);

  load.resolve('detector');
  assert.equal(await result, 'detector');
  assert.equal(tr.messages.at(-1), 'EXTEND_TIMEOUT_USEC=120000000\nSTATUS=loading models: done in 20 min; waiting for the first frame');
  assert.equal(timers.live, 0, 'no timer left');
  const sent = tr.messages.length;
  await timers.fire();
  publishEngineBuild({ kind: 'start', modelPath: 'm', precision: 'fp16', timeoutMs: 1 });
  await new Promise((r) => setImmediate(r));
  assert.equal(tr.messages.length, sent, 'nothing after the work is done, and no longer subscribed');
});

test('a load that fails passes its error through and leaves no timer', async () => {
  const { tr, timers, keepalive } = setup();
  const load = deferred();
  const result = keepalive.during('loading models', () => load.promise);
  load.reject(new Error('model missing'));
  await assert.rejects(result, /model missing/);
  assert.equal(timers.live, 0);
  assert.ok(!tr.messages.some((m) => m.includes('done in')));
});

test('bounded: after maxMs no more extensions, so a hung load still ends in systemd\'s timeout', async () => {
  const { tr, timers, keepalive } = setup({ maxMs: 60 * 60_000 });
  const load = deferred();
  void keepalive.during('loading models', () => load.promise);
  for (let s = 30; s <= 61 * 60; s += 30) {
    timers.nowMs = s * 1000;
    await timers.fire();
  }
  const extensions = tr.messages.filter((m) => m.startsWith('EXTEND_TIMEOUT_USEC=')).length;
  assert.equal(extensions, 1 + 120, 'one at the start, then one per tick up to 60 min');
  assert.match(tr.messages.at(-1)!, /^STATUS=loading models: not done after 60 min; start-up timeout no longer extended$/);
  assert.equal(timers.live, 0);
  load.resolve('late');
});

test('NTP stepping the wall clock forward three weeks during a first boot\'s engine build does not end the extensions', async () => {
  // The time spent was measured on the wall clock: a box weeks behind looked more than maxMs into its
  // start, the extensions stopped 2 min into a build that may take 30, and systemd killed it.
  const realDateNow = Date.now;
  let wallMs = 1_700_000_000_000;
  Date.now = () => wallMs;
  try {
    const { tr, timers, keepalive } = setup({ maxMs: 60 * 60_000 });
    const load = deferred();
    const result = keepalive.during('loading models', () => load.promise);
    for (let s = 30; s <= 120; s += 30) {
      wallMs += 30_000;
      if (s === 60) wallMs += 21 * 24 * 3_600_000;
      timers.nowMs = s * 1000;
      await timers.fire();
    }
    assert.equal(tr.messages.filter((m) => m.startsWith('EXTEND_TIMEOUT_USEC=60000000\n')).length, 1 + 4, 'one at the start, then one per tick');
    assert.equal(tr.messages.at(-1), 'EXTEND_TIMEOUT_USEC=60000000\nSTATUS=loading models (2 min so far)');
    assert.equal(timers.live, 1, 'still extending');
    load.resolve('detector');
    await result;
    assert.equal(tr.messages.at(-1), 'EXTEND_TIMEOUT_USEC=120000000\nSTATUS=loading models: done in 2 min; waiting for the first frame');
  } finally {
    Date.now = realDateNow;
  }
});

test('no extension once READY or STOPPING (it would extend the runtime or stop timeout), and none without NOTIFY_SOCKET', async () => {
  const { tr, timers, notifier, keepalive } = setup();
  const load = deferred();
  const result = keepalive.during('loading models', () => load.promise);
  await notifier.stopping();
  timers.nowMs = 30_000;
  await timers.fire();
  load.resolve('x');
  await result;
  assert.deepEqual(tr.messages.filter((m) => m.startsWith('EXTEND')).length, 1, 'only the one before STOPPING');

  const ready = setup();
  await ready.notifier.ready();
  await ready.keepalive.during('loading models', async () => 'x');
  assert.deepEqual(ready.tr.messages, ['READY=1']);

  const off = new StartupKeepalive({ notifier: new ServiceNotifier({ log: silent }), log: silent });
  assert.equal(await off.during('loading models', async () => 'plain'), 'plain');
});
