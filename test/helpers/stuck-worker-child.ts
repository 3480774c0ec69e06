/**
 * A process whose inference worker blocks in native code, for the worker-calls test: one call with
 * a 300 ms limit, then dispose() and process.exit(3). Prints one JSON line per step: `{"rejected":
 * {code, message}}`, `{"disposed": ms}`. Node joins every worker thread before it exits, so without
 * the exit backstop this process never ends. Usage: node --import tsx test/helpers/stuck-worker-child.ts FIFO
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { WorkerCalls } from '../../platform-adapters/worker-calls.js';
import { describeError } from '../../agent/src/util/errors.js';

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const worker = new Worker(new URL('./stand-in-worker.mjs', import.meta.url), { workerData: { answers: ['native'], fifo: process.argv[2], announce: true } });
// The call is made once the thread listens: under a loaded test run the thread took over 300 ms to
// start, was stopped by the limit before it had blocked, and the process exited normally (code 3).
await once(worker, 'message');
const calls = new WorkerCalls(worker, 'Inference on stuck.onnx', { runTimeoutMs: 300, warmedUp: true, terminateGraceMs: 300 });
try {
  await calls.call((id) => ({ type: 'run', id }), []);
  out({ answered: true });
} catch (err) {
  out({ rejected: describeError(err) });
}
const t0 = performance.now();
await calls.dispose();
out({ disposed: Math.round(performance.now() - t0) });
process.exit(3);
