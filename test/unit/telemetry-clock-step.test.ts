/**
 * Telemetry measures its spans (uptimeS, the detectFps interval) on a monotonic clock: an NTP step of
 * the wall clock backwards made uptimeS negative, and the link refused every telemetry message for as
 * long as the step, and the interval's detectFps was hundreds of thousands. `ts` stays the wall clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Telemetry } from '../../agent/src/telemetry/telemetry.js';
import { compileSchema } from '../../agent/src/util/schema.js';
import { TelemetrySchema } from '../../agent/src/protocol/index.js';

const validator = compileSchema(TelemetrySchema);

test('a backward step of the wall clock leaves uptimeS and detectFps right, and the payload valid', async () => {
  let wallMs = 1_800_000_000_000;
  let monoMs = 5_000;
  const t = new Telemetry({ intervalMs: 10_000, now: () => wallMs, monotonicNow: () => monoMs });
  const tick = (ms: number, frames: number): void => {
    for (let i = 0; i < frames; i++) t.recordFrame({ kind: 'processed', detected: true });
    wallMs += ms;
    monoMs += ms;
  };
  tick(10_000, 300);
  let s = await t.snapshot();
  assert.equal(s.uptimeS, 10);
  assert.equal(s.detectFps, 30);

  wallMs -= 3_600_000; // NTP steps the wall clock back an hour
  tick(10_000, 300);
  s = await t.snapshot();
  assert.equal(s.uptimeS, 20);
  assert.equal(s.detectFps, 30);
  assert.equal(s.ts, wallMs, 'ts is the wall clock, stepped');
  const r = validator.check(s);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));

  // And forward (a box whose clock was weeks behind): the interval is still 10 s.
  wallMs += 21 * 24 * 3_600_000;
  tick(10_000, 300);
  s = await t.snapshot();
  assert.equal(s.uptimeS, 30);
  assert.equal(s.detectFps, 30);
  t.stop();
});
