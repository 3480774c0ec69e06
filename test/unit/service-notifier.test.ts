import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ServiceNotifier, watchdogUsecFromEnv, type NotifierTimers } from '../../agent/src/service/notifier.js';
import { createNotifyTransport, SystemdNotifyTransport, type NotifyTransport, type SpawnFn } from '../../agent/src/service/notify-transport.js';
import { pino } from 'pino';

const silent = pino({ level: 'silent' });

class RecordingTransport implements NotifyTransport {
  readonly kind = 'unix-dgram' as const;
  readonly messages: string[] = [];
  closed = 0;
  fail = false;
  send(message: string): Promise<void> {
    if (this.fail) return Promise.reject(new Error('ECONNREFUSED'));
    this.messages.push(message);
    return Promise.resolve();
  }
  close(): void { this.closed++; }
}

function manualTimers(): NotifierTimers & { intervals: { fn: () => void; ms: number }[]; cleared: number } {
  const t = {
    intervals: [] as { fn: () => void; ms: number }[],
    cleared: 0,
    setInterval(fn: () => void, ms: number) { t.intervals.push({ fn, ms }); return t.intervals.length; },
    clearInterval() { t.cleared++; },
    monotonicUsec: () => 123456789n,
  };
  return t;
}

test('READY once, watchdog every WATCHDOG_USEC/2 only while frames move, STOPPING ends pings', async () => {
  const tr = new RecordingTransport();
  const timers = manualTimers();
  const n = new ServiceNotifier({ transport: tr, watchdogUsec: 10_000_000, timers, log: silent });
  assert.equal(n.watchdogIntervalMs, 5000);
  n.frameProcessed();
  await n.tick(); // before READY: systemd has not armed the watchdog, nothing sent
  assert.deepEqual(tr.messages, []);
  await n.ready('running');
  await n.ready();
  assert.deepEqual(tr.messages, ['READY=1\nSTATUS=running']);
  assert.equal(timers.intervals.length, 1);
  assert.equal(timers.intervals[0].ms, 5000);
  await n.tick(); // the frame before READY counts for the first interval
  assert.equal(tr.messages.at(-1), 'WATCHDOG=1');
  await n.tick(); // no new frame: stalled, no ping
  assert.equal(n.stats.watchdogPings, 1);
  assert.equal(n.stats.watchdogSkipped, 1);
  n.frameProcessed();
  n.frameProcessed();
  await n.tick();
  assert.equal(n.stats.watchdogPings, 2);
  await n.stopping();
  assert.equal(tr.messages.at(-1), 'STOPPING=1');
  assert.equal(timers.cleared, 1);
  n.frameProcessed();
  await n.tick();
  assert.equal(n.stats.watchdogPings, 2, 'no WATCHDOG after STOPPING');
  n.stop();
  n.stop();
  assert.equal(tr.closed, 2);
});

test('reload sends RELOADING=1 with MONOTONIC_USEC, then READY=1; failures are counted, not thrown', async () => {
  const tr = new RecordingTransport();
  const n = new ServiceNotifier({ transport: tr, timers: manualTimers(), log: silent });
  await n.reloading();
  await n.reloaded();
  assert.deepEqual(tr.messages, ['RELOADING=1\nMONOTONIC_USEC=123456789', 'READY=1']);
  tr.fail = true;
  await n.status('x\ny');
  assert.equal(n.stats.failed, 1);
  assert.equal(n.stats.sent, 2);
});

test('a STATUS set during a reload (restart needed for ...) stays in the final STATUS, which systemctl status shows', async () => {
  // READY=1 STATUS=reloaded replaced it in the same millisecond.
  const tr = new RecordingTransport();
  const n = new ServiceNotifier({ transport: tr, timers: manualTimers(), log: silent });
  await n.reloading();
  await n.status('config: 2 field(s) applied; restart needed for /deviceId');
  await n.reloaded('reloaded');
  assert.equal(tr.messages.at(-1), 'READY=1\nSTATUS=reloaded; config: 2 field(s) applied; restart needed for /deviceId');
  // The next reload starts clean.
  await n.reloading();
  await n.reloaded('reloaded');
  assert.equal(tr.messages.at(-1), 'READY=1\nSTATUS=reloaded');
});

test('without NOTIFY_SOCKET every call is a no-op and no watchdog timer starts', async () => {
  const timers = manualTimers();
  const n = new ServiceNotifier({ timers, watchdogUsec: 1_000_000, log: silent });
  await n.ready();
  assert.equal(n.enabled, false);
  assert.equal(timers.intervals.length, 0);
  assert.equal(n.stats.sent, 0);
});

test('WATCHDOG_USEC applies only to the process named by WATCHDOG_PID', () => {
  assert.equal(watchdogUsecFromEnv({ WATCHDOG_USEC: '20000000' }, 42), 20_000_000);
  assert.equal(watchdogUsecFromEnv({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 42), 20_000_000);
  assert.equal(watchdogUsecFromEnv({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '7' }, 42), 0);
  assert.equal(watchdogUsecFromEnv({ WATCHDOG_USEC: 'abc' }, 42), 0);
  assert.equal(watchdogUsecFromEnv({}, 42), 0);
});

test('transport choice: unix-dgram for a path, systemd-notify for abstract sockets or a missing addon', () => {
  assert.equal(createNotifyTransport({ env: {}, pid: 1 }).transport, undefined);
  assert.equal(createNotifyTransport({ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, pid: 1 }).transport?.kind, 'unix-dgram');
  const abstract = createNotifyTransport({ env: { NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }, pid: 1 });
  assert.equal(abstract.transport?.kind, 'systemd-notify');
  assert.match(abstract.reason ?? '', /NotifyAccess=all/);
  const noAddon = createNotifyTransport({ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, pid: 1, load: () => ({ reason: 'not built' }) });
  assert.equal(noAddon.transport?.kind, 'systemd-notify');
  assert.match(noAddon.reason ?? '', /not built/);
  assert.equal(createNotifyTransport({ env: { NOTIFY_SOCKET: 'relative' }, pid: 1 }).transport, undefined);
});

test('systemd-notify fallback passes --pid and one argument per assignment, and reports a failing exit', async () => {
  const calls: { cmd: string; args: string[] }[] = [];
  let code = 0;
  const spawn: SpawnFn = (cmd, args) => {
    calls.push({ cmd, args });
    const child = new EventEmitter() as EventEmitter & { stderr: EventEmitter & { setEncoding(): void } };
    child.stderr = Object.assign(new EventEmitter(), { setEncoding: () => undefined });
    setImmediate(() => { if (code !== 0) child.stderr.emit('data', 'No status data could be sent'); child.emit('close', code); });
    return child as never;
  };
  const tr = new SystemdNotifyTransport({ pid: 99, env: { NOTIFY_SOCKET: '@x' }, spawn });
  await tr.send('READY=1\nSTATUS=ok');
  assert.deepEqual(calls[0], { cmd: 'systemd-notify', args: ['--pid=99', 'READY=1', 'STATUS=ok'] });
  code = 1;
  await assert.rejects(tr.send('WATCHDOG=1'), /exited 1: No status data could be sent; the unit needs NotifyAccess=all/);
});

test("watchdogMode 'alive' (fleet server) pings every tick without frames", async () => {
  const tr = new RecordingTransport();
  const n = new ServiceNotifier({ transport: tr, watchdogUsec: 2_000_000, timers: manualTimers(), log: silent, watchdogMode: 'alive' });
  await n.ready();
  await n.tick();
  await n.tick();
  assert.equal(n.stats.watchdogPings, 2);
});
