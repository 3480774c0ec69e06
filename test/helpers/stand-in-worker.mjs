// A stand-in inference worker (a real worker thread) for the worker-calls tests. It answers the
// numbered calls of platform-adapters/worker-calls.ts as workerData.answers says, one entry per
// call in order: "now" answers at once, a number answers after that many milliseconds, "never"
// keeps listening and never answers (a lost reply, a stalled runtime), "native" blocks the thread
// in native code (opening workerData.fifo, a FIFO nobody writes: as a hung execution provider
// inside ONNX Runtime's synchronous session.run()). Calls past the list are never answered.
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { setTimeout } from 'node:timers';

const { answers = [], fifo, announce } = workerData ?? {};
let n = 0;
parentPort.on('message', (msg) => {
  const what = answers[n++] ?? 'never';
  if (what === 'never') return;
  if (what === 'native') {
    readFileSync(fifo);
    return;
  }
  const reply = () => parentPort.postMessage({ type: 'result', id: msg.id });
  if (what === 'now') reply();
  else setTimeout(reply, what);
});
// workerData.announce: say so once listening, for a test that must not time its first call against
// the thread's start-up (over 300 ms under a loaded CI run).
if (announce) parentPort.postMessage({ type: 'ready' });
