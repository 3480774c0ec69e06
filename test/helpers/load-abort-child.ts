/**
 * Opens a real detector (ONNX Runtime in its worker thread) and gives the load up after `ms`
 * through its signal, as the OTA installer's detector.loadTimeoutMs does. Prints one JSON line:
 * `{"rejected": {code, message}, "afterMs": n}` (or `{"opened": true}`), then ends on its own (no
 * process.exit), so a worker thread left running would keep it alive.
 * Usage: node --import tsx test/helpers/load-abort-child.ts MODEL MS
 */
import { performance } from 'node:perf_hooks';
import { Detector } from '../../agent/src/infer/detector.js';
import { describeError } from '../../agent/src/util/errors.js';

const [modelPath, ms] = process.argv.slice(2);
const ac = new AbortController();
const t0 = performance.now();
setTimeout(() => ac.abort(new Error('given up by the test')), Number(ms)).unref();
try {
  const d = await Detector.open({ modelPath, signal: ac.signal, intraOpThreads: 1 });
  process.stdout.write(`${JSON.stringify({ opened: true, afterMs: Math.round(performance.now() - t0) })}\n`);
  await d.close();
} catch (err) {
  process.stdout.write(`${JSON.stringify({ rejected: describeError(err), afterMs: Math.round(performance.now() - t0) })}\n`);
}
