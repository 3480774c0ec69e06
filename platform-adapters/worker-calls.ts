/**
 * Request/reply plumbing for adapters that keep a runtime in a worker thread (ONNX Runtime,
 * LiteRT.js): the first reply to a load request, numbered calls whose replies carry the same id,
 * transferred buffers, and every pending call rejected when the worker fails, exits or is disposed.
 */
import type { Worker } from 'node:worker_threads';
import { EdgeFleetError, InputError, ModelError } from '../agent/src/util/errors.js';
import type { TensorData } from './contract.js';

/**
 * Refuses feeds whose data does not fill their dims before they are sent (and packed RGB, for ORT's
 * runRgb). A buffer handed to an earlier run was transferred to the worker and is detached (length
 * 0): posted again, it reached LiteRT.js as an empty input and the run never answered.
 */
export function checkFeeds(feeds: Record<string, TensorData>, rgb?: { input: string; data: Uint8Array }): void {
  const detached = (name: string) => new InputError(`Input ${name}: its buffer was detached by an earlier run (run() transfers input buffers to the worker); pass a fresh copy to each run`);
  for (const [name, t] of Object.entries(feeds)) {
    const want = t.dims.reduce((a, b) => a * b, 1);
    if (want > 0 && t.data.buffer.byteLength === 0) throw detached(name);
    if (t.data.length !== want) throw new InputError(`Expected ${want} values for input ${name} (dims [${t.dims.join(', ')}]) but received ${t.data.length}`);
  }
  if (rgb && rgb.data.buffer.byteLength === 0) throw detached(rgb.input);
}

/** Posts `request` and resolves with the worker's first reply (a load answer). */
export async function firstReply<R>(worker: Worker, request: unknown, what: string): Promise<R> {
  // Remove only our own listeners afterwards: Worker keeps internal 'newListener' hooks that
  // removeAllListeners() would break (its message port would stop delivering).
  let onMessage!: (m: R) => void, onError!: (e: Error) => void, onExit!: (code: number) => void;
  try {
    return await new Promise<R>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new ModelError(`${what}: the worker exited with code ${code}`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
      worker.postMessage(request);
    });
  } finally {
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
  }
}

interface Reply {
  type: string;
  id?: number;
  message?: string;
}

/** Numbered calls to a worker whose replies are `{ type, id, ... }`, `run-failed` for an error. */
export class WorkerCalls<R extends Reply> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: R) => void; reject: (e: Error) => void }>();
  private closed = false;
  private failure: Error | undefined;

  /** `label` names the runtime in errors ("Inference", "TFLite inference"). */
  constructor(private readonly worker: Worker, private readonly label: string) {
    worker.on('message', (msg: R) => {
      if (msg.type === 'fatal') {
        this.failAll(new ModelError(`${label}: the worker failed: ${msg.message}`));
        return;
      }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (msg.type === 'run-failed') p.reject(new ModelError(`${label} failed: ${msg.message}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.failAll(new ModelError(`${label}: the worker crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.closed) this.failAll(new ModelError(`${label}: the worker exited unexpectedly with code ${code}`));
    });
  }

  /** Sends the request made for a fresh id; the buffers of `transfer` move to the worker. */
  call(make: (id: number) => unknown, transfer: ArrayBufferView[]): Promise<R> {
    if (this.closed) return Promise.reject(new EdgeFleetError('E_CLOSED', 'session is disposed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const buffers: ArrayBuffer[] = [];
    for (const t of transfer) if (t.buffer instanceof ArrayBuffer && !buffers.includes(t.buffer)) buffers.push(t.buffer);
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(make(id), buffers);
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new EdgeFleetError('E_CLOSED', 'session disposed while inference was in flight'));
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
