/**
 * TFLite adapter: runs `.tflite` flatbuffers through LiteRT.js (wasm, XNNPACK CPU kernels) in a
 * worker thread, so Linux boxes without a TFLite native runtime can use the TFLite artifacts that the
 * fleet server exports for Android. Provider "wasm" is the only one (WebGPU does not exist in Node).
 */
import type { Worker } from 'node:worker_threads';
import { existsSync, statSync } from 'node:fs';
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult, RunResult, SessionInfo, TensorData } from '../contract.js';
import { startWorker } from '../worker-entry.js';
import { EdgeFleetError, ModelError } from '../../agent/src/util/errors.js';
import { defaultWasmDir } from './litert-node.js';
import type { TfliteReply, TfliteRequest } from './protocol.js';

export const TFLITE_PROVIDERS = ['wasm'] as const;

export class TfliteAdapter implements PlatformAdapter {
  readonly name = 'tflite';

  async probe(): Promise<ProbeResult> {
    return defaultWasmDir()
      ? { available: true }
      : { available: false, reason: '@litertjs/core (LiteRT.js) is not installed; run npm install (it is a dependency in package.json)' };
  }

  capabilities(): AdapterCapabilities {
    return { providers: [...TFLITE_PROVIDERS], precisions: ['fp32', 'fp16', 'int8'], formats: ['tflite'] };
  }

  createSession(opts: CreateSessionOptions): Promise<AdapterSession> {
    return TfliteSession.open(opts);
  }
}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

export class TfliteSession implements AdapterSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker, readonly info: SessionInfo) {}

  static async open(opts: CreateSessionOptions): Promise<TfliteSession> {
    const requested = opts.providers?.length ? opts.providers : ['wasm'];
    const bad = requested.filter((p) => !(TFLITE_PROVIDERS as readonly string[]).includes(p));
    if (bad.length === requested.length) {
      throw new ModelError(`Expected providers from ${TFLITE_PROVIDERS.join(', ')} for the TFLite adapter but received ${requested.join(', ')}`);
    }
    if (!existsSync(opts.modelPath) || !statSync(opts.modelPath).isFile()) {
      throw new ModelError(`TFLite model ${opts.modelPath} does not exist; export one with fleetctl model export --target tflite`);
    }
    const worker = startWorker(import.meta.url, 'tflite-worker');
    let onMessage!: (m: TfliteReply) => void, onError!: (e: Error) => void, onExit!: (code: number) => void;
    const reply = await new Promise<TfliteReply>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new ModelError(`TFLite worker exited with code ${code} while loading ${opts.modelPath}`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
      const req: TfliteRequest = { type: 'load', modelPath: opts.modelPath, threads: 1, warmUp: opts.warmUp ?? true };
      worker.postMessage(req);
    }).finally(() => worker.off('message', onMessage).off('error', onError).off('exit', onExit));
    if (reply.type !== 'loaded') {
      await worker.terminate();
      const why = reply.type === 'load-failed' ? reply.message : `unexpected reply ${reply.type}`;
      throw new ModelError(`Cannot load TFLite model ${opts.modelPath} in LiteRT.js: ${why}. Check that the file is a TFLite flatbuffer (identifier "TFL3")`);
    }
    // Providers listed before "wasm" that this adapter does not have are reported, never silently skipped.
    const fallbacks = requested.slice(0, requested.indexOf('wasm')).map((p) => ({ provider: p, reason: 'not a LiteRT.js provider in Node' }));
    const session = new TfliteSession(worker, { inputs: reply.inputs, outputs: reply.outputs, requestedProviders: requested, provider: 'wasm', fallbacks });
    session.listen();
    return session;
  }

  private listen(): void {
    this.worker.on('message', (msg: TfliteReply) => {
      if (msg.type !== 'result' && msg.type !== 'run-failed') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'result') p.resolve({ outputs: msg.outputs, inferMs: msg.inferMs });
      else p.reject(new ModelError(`TFLite inference failed: ${msg.message}`));
    });
    this.worker.on('error', (err) => this.failAll(new ModelError(`TFLite worker crashed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.failAll(new ModelError(`TFLite worker exited unexpectedly with code ${code}`));
    });
  }

  private failAll(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Runs one inference. Input buffers are transferred to the worker: do not use them afterwards. */
  run(feeds: Record<string, TensorData>): Promise<RunResult> {
    if (this.closed) return Promise.reject(new EdgeFleetError('E_CLOSED', 'session is disposed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    for (const t of Object.values(feeds)) {
      if (t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    }
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const req: TfliteRequest = { type: 'run', id, feeds };
      this.worker.postMessage(req, transfer);
    });
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new EdgeFleetError('E_CLOSED', 'session disposed while inference was in flight'));
    await this.worker.terminate();
  }
}
