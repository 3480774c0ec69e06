/**
 * Spans measured on the wall clock went wrong when NTP stepped it: coalesce's minimum gap deferred
 * the next run an hour after a step back, and the service took a wrapper's relayed copy of the first
 * Ctrl-C for a second one after a step forward (exit 130, shutdown steps cut short) and logged a
 * negative shutdown duration after a step back. Both now measure on a monotonic clock by default.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { coalesce } from '../../agent/src/util/coalesce.js';
import { ServiceLifecycle } from '../../agent/src/service/lifecycle.js';
import { waitFor } from '../helpers/wait.js';

const HOUR_MS = 3_600_000;

/**
 * Date.now() under the test's control from here on (installed before the code under test takes its
 * clock): `step(ms)` moves it as an NTP step would; `restore()` undoes it.
 */
function wallClock() {
  const real = Date.now.bind(Date);
  let offsetMs = 0;
  const m = mock.method(Date, 'now', () => real() + offsetMs);
  return { step: (ms: number) => { offsetMs += ms; }, restore: () => m.mock.restore() };
}

test('coalesce: after a wall-clock step back of an hour, a call within the gap runs at its end, not an hour later', async () => {
  const clock = wallClock();
  try {
    let runs = 0;
    const f = coalesce(() => { runs++; }, 50);
    f();
    assert.equal(runs, 1);
    clock.step(-HOUR_MS);
    f();
    await waitFor('the deferred run', () => runs === 2, 10_000);
  } finally {
    clock.restore();
  }
});

function lifecycle() {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const lc = new ServiceLifecycle({ signals, exit: (c) => exits.push(c), log: pino({ level: 'silent' }) });
  return { signals, exits, lc };
}

test('a wrapper-relayed SIGINT right after a wall-clock step forward is still the same Ctrl-C', async () => {
  const clock = wallClock();
  try {
    const { signals, exits, lc } = lifecycle();
    let release: (() => void) | undefined;
    lc.onShutdown(() => new Promise<void>((r) => { release = r; }), { timeoutMs: 5000 });
    lc.start();
    signals.emit('SIGINT');
    clock.step(HOUR_MS);
    signals.emit('SIGINT');
    assert.deepEqual(exits, [], 'one Ctrl-C, delivered twice');
    await waitFor('the shutdown step to start', () => release);
    release?.();
    const result = await lc.shutdown();
    assert.deepEqual(exits, [0]);
    assert.equal(result.reason, 'SIGINT');
  } finally {
    clock.restore();
  }
});

test('the shutdown duration is not thrown off by a wall-clock step back during a step', async () => {
  const clock = wallClock();
  try {
    const { signals, lc } = lifecycle();
    lc.onShutdown(() => { clock.step(-HOUR_MS); }, { name: 'capture' });
    lc.start();
    signals.emit('SIGTERM');
    const result = await lc.shutdown();
    assert.ok(result.durationMs >= 0 && result.durationMs < 60_000, `durationMs ${result.durationMs}`);
  } finally {
    clock.restore();
  }
});
