/**
 * Runs one GstFrameSource on real GStreamer through `restarts` restarts of its restart path, with the
 * real (not injected) restart sleep, and prints one JSON line:
 * `{"restarts": n, "fdsGrowth": n, "abortListeners": n, "warnings": [names]}`.
 * fdsGrowth: open file descriptors after the last restart (and a forced GC) less those after the
 * first (GStreamer opens its registry and plugins on the first pipeline). abortListeners: the
 * listeners on the caller's signal while the source still runs.
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

const openFds = async (): Promise<number> => {
  // Wrappers of finished pipelines go with a full GC; their weak callbacks run on the next turns.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return readdirSync('/proc/self/fd').length;
};

const source = new GstFrameSource({ config });
const ac = new AbortController();
let fdsAfterFirst: Promise<number> | undefined;
let abortListeners = 0;
// The source reports restarts only through its stats: look at them every few ms.
const watch = setInterval(() => {
  if (source.stats.restarts >= 1) fdsAfterFirst ??= openFds();
  if (source.stats.restarts >= restarts && !ac.signal.aborted) {
    abortListeners = getEventListeners(ac.signal, 'abort').length;
    ac.abort();
  }
}, 2);
for await (const _frame of source.frames(ac.signal)) { /* frames are not the point */ }
clearInterval(watch);
const first = await (fdsAfterFirst ?? openFds());
const last = await openFds();
process.stdout.write(`${JSON.stringify({ restarts: source.stats.restarts, fdsGrowth: last - first, abortListeners, warnings })}\n`);
