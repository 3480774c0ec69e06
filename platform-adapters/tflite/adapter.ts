/**
 * TFLite adapter: runs `.tflite` flatbuffers through LiteRT.js (wasm, XNNPACK CPU kernels) in a
 * worker thread, so Linux boxes without a TFLite native runtime can use the TFLite artifacts that the
 * fleet server exports for Android. Provider "wasm" is the only one (WebGPU does not exist in Node).
 */
import type { Worker } from 'node:worker_threads';
import { existsSync, statSync } from 'node:fs';
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult, RunResult, SessionInfo, TensorData } from '../contract.js';
import { startWorker } from '../worker-entry.js';
import { checkFeeds, exitOf, firstReply, LoadAbortedError, stopWorkerThread, WorkerCalls, type WorkerCallsOptions } from '../worker-calls.js';
import { ModelError } from '../../agent/src/util/errors.js';
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

type Result = Extract<TfliteReply, { type: 'result' }>;

export class TfliteSession implements AdapterSession {
  private readonly calls: WorkerCalls<Result>;

  private constructor(worker: Worker, readonly info: SessionInfo, modelPath: string, calls: WorkerCallsOptions) {
    this.calls = new WorkerCalls<Result>(worker, `TFLite inference on ${modelPath}`, calls);
  }

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
    const exited = exitOf(worker);
    const req: TfliteRequest = { type: 'load', modelPath: opts.modelPath, threads: 1, warmUp: opts.warmUp ?? true };
    let reply: TfliteReply;
    try {
      reply = await firstReply<TfliteReply>(worker, req, `loading TFLite model ${opts.modelPath}`, opts.signal);
    } catch (err) {
      // Given up: LiteRT.js runs wasm, which terminate() interrupts.
      if (err instanceof LoadAbortedError) await stopWorkerThread(worker, `Loading TFLite model ${opts.modelPath}`, { exited });
      throw err;
    }
    if (reply.type !== 'loaded') {
      await worker.terminate();
      const why = reply.type === 'load-failed' ? reply.message : `unexpected reply ${reply.type}`;
      throw new ModelError(`Cannot load TFLite model ${opts.modelPath} in LiteRT.js: ${why}. Check that the file is a TFLite flatbuffer (identifier "TFL3")`);
    }
    // Providers listed before "wasm" that this adapter does not have are reported, never silently skipped.
    const fallbacks = requested.slice(0, requested.indexOf('wasm')).map((p) => ({ provider: p, reason: 'not a LiteRT.js provider in Node' }));
    const info: SessionInfo = { inputs: reply.inputs, outputs: reply.outputs, requestedProviders: requested, provider: 'wasm', fallbacks };
    return new TfliteSession(worker, info, opts.modelPath, { runTimeoutMs: opts.runTimeoutMs, warmedUp: req.warmUp });
  }

  /** Runs one inference. Input buffers are transferred to the worker: do not use them afterwards. */
  async run(feeds: Record<string, TensorData>): Promise<RunResult> {
    checkFeeds(feeds);
    const r = await this.calls.call((id): TfliteRequest => ({ type: 'run', id, feeds }), Object.values(feeds).map((t) => t.data));
    return { outputs: r.outputs, inferMs: r.inferMs };
  }

  dispose(): Promise<void> {
    return this.calls.dispose();
  }
}
