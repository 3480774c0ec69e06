/**
 * The privacy detector's reopen attempts are spaced on a monotonic clock: spaced on the wall clock, an
 * NTP step back of an hour during the 5 s wait held the next attempt back an hour, and every snapshot
 * stayed withheld meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import type { Frame } from '../../agent/src/types.js';

const frame = (i: number): Frame => ({ width: 8, height: 8, data: new Uint8Array(192), index: i, ptsNs: i * 1e8, capturedAtNs: 0, sourceId: 'cam' });

test('a crashed privacy detector is tried again 5 s later even when the wall clock steps back an hour meanwhile', async () => {
  const realDateNow = Date.now;
  let wallMs = 1_800_000_000_000;
  let monoMs = 0;
  Date.now = () => wallMs;
  let opens = 0;
  const stage = new PrivacyStage({
    config: parsePrivacyConfig({ everyNFrames: 1 }), sink: () => undefined, logger: pino({ level: 'silent' }), monotonicNow: () => monoMs,
    createDetector: (deps) => {
      opens++;
      return new PrivacyDetector({ ...deps, faces: { detect: async () => { throw Object.assign(new Error('TFLite inference: the worker exited unexpectedly with code 1'), { code: 'E_INFER' }); } } });
    },
  });
  try {
    await stage.start();
    let i = 0;
    /** Failing frames every 100 ms, both clocks moving on, for `ms`. */
    const runFor = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 100) {
        await stage.observe(frame(i++), []);
        wallMs += 100;
        monoMs += 100;
        await new Promise((r) => setImmediate(r));
      }
    };
    await runFor(1_000);
    assert.equal(opens, 2, 'reopened after three failures in a row');
    wallMs -= 3_600_000; // NTP steps the wall clock back an hour
    await runFor(3_500);
    assert.equal(opens, 2, 'not before the 5 s delay');
    await runFor(1_500);
    assert.equal(opens, 3, 'tried again once the 5 s delay has passed');
  } finally {
    Date.now = realDateNow;
    await stage.stop();
  }
});
