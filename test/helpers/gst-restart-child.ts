/**
 * Runs one GstFrameSource on real GStreamer through `restarts` restarts of its restart path, with the
 * real (not injected) restart sleep, and prints one JSON line:
 * `{"restarts": n, "fdsGrowth": n, "heapGrowthBytes": n, "abortListeners": n, "warnings": [names]}`.
 * fdsGrowth: open file descriptors after the last restart (and a forced GC) less those after the
 * first (GStreamer opens its registry and plugins on the first pipeline); heapGrowthBytes: the same
 * for the JS heap in use. abortListeners: the listeners on the caller's signal while the source
 * still runs.
 * Usage: node --import tsx test/helpers/gst-restart-child.ts '<source JSON>' <restarts>
 */
import { readdirSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { compileSchema } from '../../agent/src/util/schema.js';
import { setConfiguredLogLevel } from '../../agent/src/util/log.js';

setConfiguredLogLevel('error');
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const config = compileSchema(SourceConfig).parse(JSON.parse(process.argv[2] ?? '{}'), 'source');
const restarts = Number(process.argv[3] ?? 30);
const warnings: string[] = [];
process.on('warning', (w) => warnings.push(w.name));

interface Usage { fds: number; heapBytes: number }
const usage = async (): Promise<Usage> => {
  // Wrappers of finished pipelines go with a full GC; their weak callbacks run on the next turns.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { fds: readdirSync('/proc/self/fd').length, heapBytes: process.memoryUsage().heapUsed };
};

const source = new GstFrameSource({ config });
const ac = new AbortController();
let afterFirst: Promise<Usage> | undefined;
let abortListeners = 0;
// The source reports restarts only through its stats: look at them every few ms.
const watch = setInterval(() => {
  if (source.stats.restarts >= 1) afterFirst ??= usage();
  if (source.stats.restarts >= restarts && !ac.signal.aborted) {
    abortListeners = getEventListeners(ac.signal, 'abort').length;
    ac.abort();
  }
}, 2);
for await (const _frame of source.frames(ac.signal)) { /* frames are not the point */ }
clearInterval(watch);
const first = await (afterFirst ?? usage());
const last = await usage();
const heapGrowthBytes = last.heapBytes - first.heapBytes;
process.stdout.write(`${JSON.stringify({ restarts: source.stats.restarts, fdsGrowth: last.fds - first.fds, heapGrowthBytes, abortListeners, warnings })}\n`);
