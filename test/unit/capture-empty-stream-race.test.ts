/**
 * A file, test or raw pipeline source whose stream is empty can have its appsink read eos right after
 * play(), as a source that failed to start does, and the first bus message of both is the appsink's
 * READY. It was then stopped to read the failure on, and hung: its pipeline had started, so NULL set
 * its bus flushing, no message came, and the bus poll waited for ever (CI: the child process printed
 * its result and never exited). A stand-in for gstreamer-superficial that polls as it does (one message
 * per poll; polled on after the callback unless the pipeline is in NULL; a poll on a flushing bus
 * never returns) shows both cases end, the right way, with no poll left waiting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource, type GstModule } from '../../agent/src/capture/gst-source.js';

const source = compileSchema(SourceConfig);
const ready = { type: 'state-changed', 'new-state': 'GST_STATE_READY' };

/** A pipeline whose appsink reads eos at once: `started` (an empty stream) or not (an element failed NULL→READY). */
function racingGst(started: boolean) {
  const polls = { waiting: 0 };
  const gst: GstModule = {
    Pipeline: class {
      private state: 'NULL' | 'PLAYING' = 'NULL';
      private flushing = false;
      private queue: Array<Record<string, unknown>> = [];
      private pending: Array<(m: Record<string, unknown>) => void> = [];
      play() {
        this.state = started ? 'PLAYING' : 'NULL';
        this.queue.push(ready, ...(started ? [{ type: 'state-changed', 'new-state': 'GST_STATE_PAUSED' }, { type: 'eos' }] : [{ type: 'error', message: 'Could not open resource', debug: 'v4l2src0' }]));
        this.deliver();
      }
      stop() {
        // A started pipeline's bus flushes on its way to NULL; a failed start's posts the stop's NULLs.
        if (this.state !== 'NULL') this.flushing = true;
        else this.queue.push({ type: 'state-changed', 'new-state': 'GST_STATE_NULL' });
        this.state = 'NULL';
        this.deliver();
      }
      sendEOS() { /* not asked for here */ }
      pollBus(cb: (m: Record<string, unknown>) => void) {
        this.pending.push(cb);
        polls.waiting++;
        this.deliver();
      }
      private deliver() {
        setImmediate(() => {
          while (this.pending.length > 0 && this.queue.length > 0 && !this.flushing) {
            const cb = this.pending.shift()!;
            const msg = this.queue.shift()!;
            polls.waiting--;
            cb(msg);
            // gstreamer-superficial polls on unless the pipeline is in NULL when the callback returns.
            if (this.state !== 'NULL') this.pollBus(cb);
          }
        });
      }
      findChild() {
        return { eos: true, pull: () => { throw new Error('an appsink that read eos is not pulled'); } };
      }
    },
  };
  return { gst, polls };
}

for (const started of [true, false]) {
  test(started ? 'an empty stream that read eos at once ends as an end of stream, no bus poll left waiting'
    : 'a pipeline that could not start still fails with its reason, no bus poll left waiting', async () => {
    const { gst, polls } = racingGst(started);
    const src = new GstFrameSource({ config: source.parse({ kind: 'pipeline', id: 'raw', live: false, pipeline: 'videotestsrc ! appsink', reconnect: { maxRetries: 0 } }, 's'), gst, sleep: async () => undefined });
    const t0 = Date.now();
    let frames = 0;
    let error: Error | undefined;
    try {
      for await (const _f of src.frames()) frames++;
    } catch (err) {
      error = err as Error;
    }
    assert.equal(frames, 0);
    if (started) assert.equal(error, undefined, 'an empty stream is no failure');
    else assert.match(error?.message ?? '', /^Camera source "raw" failed: the pipeline could not start: Could not open resource/);
    assert.equal(polls.waiting, 0, 'a bus poll left waiting keeps the process from exiting');
    assert.ok(Date.now() - t0 < 2900, `ended by its messages, not by the 3 s bound (${Date.now() - t0} ms)`);
  });
}
