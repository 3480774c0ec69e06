/**
 * Worker thread that owns one LiteRT.js compiled model. The wasm interpreter runs synchronously
 * inside `run()`, so, like ORT, it never runs on the main thread (STYLE.md habit 9).
 */
import { parentPort } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { TensorData, TensorInfo } from '../contract.js';
import type { TfliteReply, TfliteRequest } from './protocol.js';
import { loadLiteRtNode, type LiteRt } from './litert-node.js';

if (!parentPort) throw new Error('tflite-worker must run inside a worker_thread');
const port = parentPort;

type Compiled = Awaited<ReturnType<LiteRt['loadAndCompile']>>;
let lt: LiteRt | undefined;
let model: Compiled | undefined;
let inputs: TensorInfo[] = [];
let outputs: TensorInfo[] = [];

function post(msg: TfliteReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function describe(details: ReturnType<Compiled['getInputDetails']>): TensorInfo[] {
  return details.map((d) => ({ name: d.name, type: d.dtype, dims: Array.from(d.shape) }));
}

function typed(t: TensorData): Float32Array | Int32Array | Uint8Array {
  if (t.data instanceof Float32Array || t.data instanceof Int32Array || t.data instanceof Uint8Array) return t.data;
  throw new TypeError(`LiteRT.js takes float32, int32 or uint8 tensors but received ${t.type}`);
}

async function runOnce(feeds: Record<string, TensorData>): Promise<{ outputs: Record<string, TensorData>; inferMs: number }> {
  if (!model || !lt) throw new Error('no model loaded');
  const tensors = inputs.map((i) => {
    const t = feeds[i.name];
    if (!t) throw new TypeError(`Expected an input named "${i.name}" but the feeds hold ${Object.keys(feeds).join(', ') || 'nothing'}`);
    return new lt!.Tensor(typed(t) as Float32Array, t.dims);
  });
  try {
    const t0 = performance.now();
    const result = await model.run(tensors);
    const inferMs = performance.now() - t0;
    const out: Record<string, TensorData> = {};
    result.forEach((r, k) => {
      const data = r.toTypedArray().slice() as Float32Array | Int32Array | Uint8Array;
      const dims = Array.from(r.type.layout.dimensions as ArrayLike<number>, Number);
      out[outputs[k].name] = { type: r.type.dtype as TensorData['type'], dims, data };
      r.delete();
    });
    return { outputs: out, inferMs };
  } finally {
    for (const t of tensors) t.delete();
  }
}

async function load(req: Extract<TfliteRequest, { type: 'load' }>): Promise<void> {
  try {
    lt = await loadLiteRtNode();
    model = await lt.loadAndCompile(new Uint8Array(readFileSync(req.modelPath)), {
      accelerator: 'wasm', cpuOptions: { numThreads: req.threads },
    });
    inputs = describe(model.getInputDetails());
    outputs = describe(model.getOutputDetails());
    if (req.warmUp) {
      const feeds: Record<string, TensorData> = {};
      for (const i of inputs) {
        const n = i.dims.reduce((a, b) => a * Math.max(1, b), 1);
        const data = i.type === 'int32' ? new Int32Array(n) : i.type === 'uint8' ? new Uint8Array(n) : new Float32Array(n);
        feeds[i.name] = { type: i.type as TensorData['type'], dims: i.dims.map((d) => Math.max(1, d)), data };
      }
      await runOnce(feeds);
    }
    post({ type: 'loaded', inputs, outputs });
  } catch (err) {
    post({ type: 'load-failed', message: (err as Error).message });
  }
}

port.on('message', (req: TfliteRequest) => {
  if (req.type === 'load') {
    void load(req);
    return;
  }
  runOnce(req.feeds).then(
    (r) => post({ type: 'result', id: req.id, ...r }, Object.values(r.outputs).map((t) => t.data.buffer as ArrayBuffer)),
    (err: unknown) => post({ type: 'run-failed', id: req.id, message: (err as Error).message }),
  );
});
