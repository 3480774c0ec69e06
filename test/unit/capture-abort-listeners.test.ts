/**
 * The runner gives every camera the same stop signal: each source added its own abort listener, and
 * from the 11th camera Node warned MaxListenersExceededWarning at every start, which reads as a leak.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { waitFor } from '../helpers/wait.js';
import { standInCamera } from '../helpers/gst-stand-in.js';

const source = compileSchema(SourceConfig);

/** A live camera that sends a 2×2 frame whenever pulled, until stopped. */
const endless = standInCamera();

test('20 cameras under one stop signal: one abort listener, no warning, every camera stops on abort, none left after', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  const ac = new AbortController();
  try {
    const counts = Array.from({ length: 20 }, () => 0);
    let started = 0;
    const runs = counts.map(async (_, i) => {
      const src = new GstFrameSource({ config: source.parse({ kind: 'test', id: `cam${i}` }, 's'), gst: endless });
      for await (const _f of src.frames(ac.signal)) if (counts[i]++ === 0) started++;
    });
    await waitFor('every camera started', () => started === counts.length, 5_000);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    ac.abort();
    await Promise.all(runs);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    // A second run under a new signal, ended by its consumers: nothing left on that signal either.
    const ac2 = new AbortController();
    for (let i = 0; i < 12; i++) {
      const src = new GstFrameSource({ config: source.parse({ kind: 'test', id: `x${i}`, maxFrames: 2 }, 's'), gst: endless });
      for await (const _f of src.frames(ac2.signal)) { /* two frames */ }
    }
    assert.equal(getEventListeners(ac2.signal, 'abort').length, 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
  } finally {
    ac.abort(); // a failed assertion must not leave 20 cameras running
    process.off('warning', onWarning);
  }
});
