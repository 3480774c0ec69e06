/**
 * Worker thread that owns one onnxruntime-node session. `session.run()` keeps its thread busy for
 * the whole inference (DESIGN.md measured ~100 ms event-loop stalls), so it never runs on the main
 * thread. Tensors cross both ways as transferred ArrayBuffers (no copies).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import type { TensorData, TensorInfo } from '../contract.js';
import type { OrtWorkerData, WorkerRequest, WorkerReply } from './protocol.js';
import { workerSessionOptions } from './session-options.js';
import { toTensor } from '../../agent/src/preprocess/tensor.js';
import { createDecoder } from '../../agent/src/decode/index.js';
import { decoderFetches } from '../../agent/src/decode/spec.js';
import type { Decoder, OutputMap } from '../../agent/src/decode/types.js';

if (!parentPort) throw new Error('ort-worker must run inside a worker_thread');
const port = parentPort;
// Load failures are reported to the main thread with their reason; keep ORT's own stderr lines quiet.
ort.env.logLevel = 'fatal';
let session: ort.InferenceSession | undefined;
const decoders = new Map<string, Decoder>();
const stopFlag = (workerData as OrtWorkerData | undefined)?.stopFlag;

/**
 * The main thread stops this worker by asking, never by terminate(): terminated inside the native
 * session.run(), the binding aborts the whole process when the run returns. Here, between runs, the
 * thread ends by emptying its event loop (the port is what holds it), not by process.exit(): a
 * thread that ends by itself first waits for V8's background tasks of this isolate (Turbofan
 * compile jobs), while process.exit() in a worker skips that wait and Node then unregisters the
 * isolate from its platform before disposing it, so a compile job still running for it can abort
 * the whole process ("NodePlatform::ForIsolate … Assertion failed", seen once in CI when an
 * `edge-agent redact` ended). Something still holding the loop (a load in flight) is cut short by
 * process.exit() after STOP_GRACE_MS, within the main thread's grace (worker-calls.ts).
 */
const STOP_GRACE_MS = 500;
let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  port.close();
  setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
}

/** Stops (see stop) when the main thread has asked through the shared flag; true when it has. */
function stopIfAsked(): boolean {
  if (!stopFlag || Atomics.load(stopFlag, 0) !== 1) return false;
  stop();
  return true;
}

function post(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function info(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => m.isTensor
    ? { name: m.name, type: m.type as TensorInfo['type'], dims: m.shape.map((d) => (typeof d === 'number' ? d : -1)) }
    : { name: m.name, type: 'unknown', dims: [] });
}

function zeros(i: TensorInfo): ort.Tensor {
  const dims = i.dims.map((d) => (d > 0 ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  switch (i.type) {
    case 'uint8': return new ort.Tensor('uint8', new Uint8Array(n), dims);
    case 'int32': return new ort.Tensor('int32', new Int32Array(n), dims);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(n), dims);
    default: return new ort.Tensor('float32', new Float32Array(n), dims);
  }
}

async function load(req: Extract<WorkerRequest, { type: 'load' }>): Promise<void> {
  const fallbacks: Array<{ provider: string; reason: string }> = [];
  for (const provider of req.providers) {
    try {
      session = await ort.InferenceSession.create(req.modelPath, workerSessionOptions(provider, req.intraOpThreads));
      const inputs = info(session.inputMetadata);
      const outputs = info(session.outputMetadata);
      if (req.warmUp) {
        const feeds: Record<string, ort.Tensor> = {};
        for (const i of inputs) feeds[i.name] = zeros(i);
        await session.run(feeds);
      }
      post({ type: 'loaded', inputs, outputs, provider, fallbacks });
      return;
    } catch (err) {
      fallbacks.push({ provider, reason: (err as Error).message.split('\n')[0] });
    }
  }
  post({ type: 'load-failed', fallbacks });
}

async function run(req: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  if (!session) {
    post({ type: 'run-failed', id: req.id, message: 'no model loaded' });
    return;
  }
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(req.feeds)) {
      feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    }
    if (req.rgb) {
      const t = toTensor(req.rgb.data, req.rgb.spec);
      feeds[req.rgb.input] = t.data instanceof Float32Array ? new ort.Tensor('float32', t.data, t.dims) : new ort.Tensor('uint8', t.data, t.dims);
    }
    const t0 = performance.now();
    if (stopIfAsked()) return;
    // Decoded here: fetch only what the decoder reads (decoderFetches: the others are never copied out).
    const fetches = req.decode ? decoderFetches(req.decode.spec, session.outputNames) : undefined;
    const result = fetches ? await session.run(feeds, fetches) : await session.run(feeds);
    const inferMs = performance.now() - t0;
    const outputs: Record<string, TensorData> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, tensor] of Object.entries(result)) {
      let data = tensor.data as TensorData['data'];
      // Copy when the array is a view into a larger buffer, so that only its own bytes travel.
      if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
      outputs[name] = { type: tensor.type as TensorData['type'], dims: [...tensor.dims], data };
      tensor.dispose?.();
    }
    if (req.decode) {
      const t1 = performance.now();
      const key = JSON.stringify(req.decode.spec);
      let decoder = decoders.get(key);
      if (!decoder) decoders.set(key, (decoder = createDecoder(req.decode.spec)));
      const map: OutputMap = {};
      for (const [name, t] of Object.entries(outputs)) {
        map[name] = { dims: t.dims, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>) };
      }
      const detections = decoder(map, { transform: req.decode.transform, labels: req.decode.labels, outputNames: session.outputNames });
      post({ type: 'result', id: req.id, outputs: {}, inferMs, detections, decodeMs: performance.now() - t1 });
      return;
    }
    for (const t of Object.values(outputs)) transfer.push(t.data.buffer as ArrayBuffer);
    post({ type: 'result', id: req.id, outputs, inferMs }, transfer);
  } catch (err) {
    // The code travels with the message: a broken output (E_MODEL_OUTPUT, from the decoder) is handled
    // apart from a failed run by the pipeline and the OTA health window.
    const code = (err as { code?: unknown }).code;
    post({ type: 'run-failed', id: req.id, message: (err as Error).message, ...(typeof code === 'string' ? { code } : {}) });
  }
}

port.on('message', (req: WorkerRequest) => {
  if (req.type === 'stop') { stop(); return; }
  if (stopIfAsked()) return;
  const work = req.type === 'load' ? load(req) : req.type === 'run' ? run(req) : release();
  work.catch((err: unknown) => post({ type: 'fatal', message: (err as Error).message }));
});

async function release(): Promise<void> {
  await session?.release();
  session = undefined;
  post({ type: 'released' });
}
