/**
 * ONNX Runtime adapter: CPU, CUDA and TensorRT execution providers through onnxruntime-node, each
 * session in its own worker thread. Providers are tried in the configured order and only those;
 * the session reports the requested list and the provider it actually got.
 */
import type { Worker } from 'node:worker_threads';
import { existsSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult, RunResult, SessionInfo, TensorData } from '../contract.js';
import type { DecodeRequest, OrtWorkerData, WorkerReply, WorkerRequest } from './protocol.js';
import type { Detection } from '../../agent/src/types.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import { startWorker } from '../worker-entry.js';
import { checkFeeds, exitOf, firstReply, LoadAbortedError, stopWorkerThread, WorkerCalls, type WorkerCallsOptions } from '../worker-calls.js';
import { ModelError } from '../../agent/src/util/errors.js';

/** ORT's names for the execution providers that the Node binding can request. */
export const ORT_PROVIDERS = ['cpu', 'cuda', 'tensorrt'] as const;

export class OrtAdapter implements PlatformAdapter {
  readonly name = 'onnxruntime';

  async probe(): Promise<ProbeResult> {
    try {
      await import('onnxruntime-node');
      return { available: true };
    } catch (err) {
      return { available: false, reason: `onnxruntime-node failed to load (${(err as Error).message}); run ./scripts/setup.sh` };
    }
  }

  capabilities(): AdapterCapabilities {
    return { providers: [...ORT_PROVIDERS], precisions: ['fp32', 'fp16', 'int8'], formats: ['onnx'] };
  }

  async createSession(opts: CreateSessionOptions): Promise<AdapterSession> {
    return OrtWorkerSession.open(opts);
  }
}

/** A run whose decoding also happened in the worker. */
export interface DecodedRunResult extends RunResult {
  detections?: Detection[];
  decodeMs?: number;
}

type Result = Extract<WorkerReply, { type: 'result' }>;

export class OrtWorkerSession implements AdapterSession {
  private readonly calls: WorkerCalls<Result>;

  private constructor(worker: Worker, readonly info: SessionInfo, modelPath: string, calls: WorkerCallsOptions) {
    this.calls = new WorkerCalls<Result>(worker, `Inference on ${modelPath}`, calls);
  }

  static async open(opts: CreateSessionOptions): Promise<OrtWorkerSession> {
    const providers = opts.providers?.length ? opts.providers : ['cpu'];
    for (const p of providers) {
      if (!(ORT_PROVIDERS as readonly string[]).includes(p)) {
        throw new ModelError(`Expected execution providers from ${ORT_PROVIDERS.join(', ')} but received "${p}"`);
      }
    }
    if (!existsSync(opts.modelPath) || !statSync(opts.modelPath).isFile()) {
      throw new ModelError(`Model file ${opts.modelPath} does not exist; run ./scripts/setup.sh for the default models or give the path of an .onnx file`);
    }
    const workerData: OrtWorkerData = { stopFlag: new Int32Array(new SharedArrayBuffer(4)) };
    const worker = startWorker(import.meta.url, 'ort-worker', { workerData });
    const exited = exitOf(worker);
    // Stopped by asking, never by terminate() (see WorkerCallsOptions.requestStop).
    const requestStop = () => {
      Atomics.store(workerData.stopFlag, 0, 1);
      worker.postMessage({ type: 'stop' } satisfies WorkerRequest);
    };
    const req: WorkerRequest = {
      type: 'load', modelPath: opts.modelPath, providers,
      intraOpThreads: opts.intraOpThreads ?? Math.max(1, cpus().length),
      warmUp: opts.warmUp ?? true,
    };
    let reply: WorkerReply;
    try {
      reply = await firstReply<WorkerReply>(worker, req, `loading ${opts.modelPath}`, opts.signal);
    } catch (err) {
      // Given up: the worker ends between the load and the warm-up run, or is reported stuck in native code.
      if (err instanceof LoadAbortedError) await stopWorkerThread(worker, `Loading ${opts.modelPath}`, { exited, requestStop });
      throw err;
    }
    if (reply.type !== 'loaded') {
      await worker.terminate();
      const reasons = reply.type === 'load-failed' ? reply.fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ') : (reply as { message?: string }).message;
      throw new ModelError(`Cannot load model ${opts.modelPath} with execution providers [${providers.join(', ')}]: ${reasons}. ` +
        'Check that the file is a valid ONNX model, and list "cpu" last in the providers if falling back to the CPU is acceptable');
    }
    const info: SessionInfo = { inputs: reply.inputs, outputs: reply.outputs, requestedProviders: providers, provider: reply.provider, fallbacks: reply.fallbacks };
    return new OrtWorkerSession(worker, info, opts.modelPath, { runTimeoutMs: opts.runTimeoutMs, warmedUp: req.warmUp, requestStop });
  }

  /** Runs one inference. Input buffers are transferred to the worker: do not use them afterwards. */
  run(feeds: Record<string, TensorData>): Promise<RunResult> {
    return this.send(feeds);
  }

  /**
   * Runs one inference on packed RGB already resized to the model's input: the worker does the
   * per-pixel layout and normalisation, keeping that work off the main thread too.
   */
  runRgb(input: string, rgb: Uint8Array, spec: PreprocessSpec, decode?: DecodeRequest): Promise<DecodedRunResult> {
    return this.send({}, { input, data: rgb, spec }, decode);
  }

  private async send(feeds: Record<string, TensorData>, rgb?: { input: string; data: Uint8Array; spec: PreprocessSpec }, decode?: DecodeRequest): Promise<DecodedRunResult> {
    checkFeeds(feeds, rgb);
    const r = await this.calls.call((id): WorkerRequest => ({ type: 'run', id, feeds, rgb, decode }), [...Object.values(feeds).map((t) => t.data), ...(rgb ? [rgb.data] : [])]);
    return { outputs: r.outputs, inferMs: r.inferMs, detections: r.detections, decodeMs: r.decodeMs };
  }

  get inFlight(): number {
    return this.calls.inFlight;
  }

  dispose(): Promise<void> {
    return this.calls.dispose();
  }
}
