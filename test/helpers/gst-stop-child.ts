/**
 * A live videotestsrc through GstFrameSource with a consumer that holds the main thread for
 * BUSY_MS per frame (as a synchronous pipeline stage does), stopped after 5 frames either by
 * maxFrames (STOP=frames, `run --frames`) or by aborting the signal (STOP=abort, SIGTERM). Prints
 * one JSON line `{"frames": n, "ms": t}` and then ends on its own: no process.exit, so a bus poll
 * or appsink pull left waiting would keep it alive. Usage: node --import tsx test/helpers/gst-stop-child.ts
 */
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { compileSchema } from '../../agent/src/util/schema.js';

const stopBy = process.env.STOP === 'abort' ? 'abort' : 'frames';
const busyMs = Number(process.env.BUSY_MS ?? 300);
const config = compileSchema(SourceConfig).parse({ kind: 'test', id: 'cam', live: true, framerate: 30, maxFrames: stopBy === 'frames' ? 5 : 0 }, 'source');
const source = new GstFrameSource({ config });
const ac = new AbortController();
const t0 = Date.now();
let frames = 0;
for await (const _frame of source.frames(ac.signal)) {
  frames++;
  const until = Date.now() + busyMs;
  while (Date.now() < until) { /* the main thread is busy: no appsink pull is answered meanwhile */ }
  await new Promise((r) => setImmediate(r));
  if (stopBy === 'abort' && frames === 5) ac.abort();
}
process.stdout.write(`${JSON.stringify({ frames, ms: Date.now() - t0 })}\n`);
