/**
 * ONNX Runtime adapter: CPU, CUDA and TensorRT execution providers through onnxruntime-node, each
 * session in its own worker thread. Providers are tried in the configured order and only those;
 * the session reports the requested list and the provider it actually got.
 */
import type { Worker } from 'node:worker_threads';
import { existsSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult, RunResult, SessionInfo, TensorData } from '../contract.js';
import type { DecodeRequest, WorkerReply, WorkerRequest } from './protocol.js';
import type { Detection } from '../../agent/src/types.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import { startWorker } from '../worker-entry.js';
import { ModelError, EdgeFleetError } from '../../agent/src/util/errors.js';

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

interface Pending {
  resolve: (r: DecodedRunResult) => void;
  reject: (e: Error) => void;
}

export class OrtWorkerSession implements AdapterSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private exitError: Error | undefined;

  private constructor(private readonly worker: Worker, readonly info: SessionInfo, private readonly modelPath: string) {}

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
    const worker = startWorker(import.meta.url, 'ort-worker');
    // Remove only our own listeners afterwards: Worker keeps internal 'newListener' hooks that
    // removeAllListeners() would break (its message port would stop delivering).
    let onMessage!: (m: WorkerReply) => void, onError!: (e: Error) => void, onExit!: (code: number) => void;
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new ModelError(`inference worker exited with code ${code} while loading ${opts.modelPath}`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
      const req: WorkerRequest = {
        type: 'load', modelPath: opts.modelPath, providers,
        intraOpThreads: opts.intraOpThreads ?? Math.max(1, cpus().length),
        warmUp: opts.warmUp ?? true,
      };
      worker.postMessage(req);
    }).finally(() => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    if (reply.type !== 'loaded') {
      await worker.terminate();
      const reasons = reply.type === 'load-failed' ? reply.fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ') : (reply as { message?: string }).message;
      throw new ModelError(`Cannot load model ${opts.modelPath} with execution providers [${providers.join(', ')}]: ${reasons}. ` +
        'Check that the file is a valid ONNX model, and list "cpu" last in the providers if falling back to the CPU is acceptable');
    }
    const info: SessionInfo = { inputs: reply.inputs, outputs: reply.outputs, requestedProviders: providers, provider: reply.provider, fallbacks: reply.fallbacks };
    const session = new OrtWorkerSession(worker, info, opts.modelPath);
    session.listen();
    return session;
  }

  private listen(): void {
    this.worker.on('message', (msg: WorkerReply) => {
      if (msg.type === 'result' || msg.type === 'run-failed') {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.type === 'result') p.resolve({ outputs: msg.outputs, inferMs: msg.inferMs, detections: msg.detections, decodeMs: msg.decodeMs });
        else p.reject(new ModelError(`Inference failed on ${this.modelPath}: ${msg.message}`));
      } else if (msg.type === 'fatal') {
        this.failAll(new ModelError(`Inference worker failed: ${msg.message}`));
      }
    });
    this.worker.on('error', (err) => this.failAll(new ModelError(`Inference worker crashed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.failAll(new ModelError(`Inference worker exited unexpectedly with code ${code}`));
    });
  }

  private failAll(err: Error): void {
    this.exitError = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
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

  private send(feeds: Record<string, TensorData>, rgb?: { input: string; data: Uint8Array; spec: PreprocessSpec }, decode?: DecodeRequest): Promise<DecodedRunResult> {
    if (this.closed) return Promise.reject(new EdgeFleetError('E_CLOSED', 'session is disposed'));
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    for (const t of [...Object.values(feeds), ...(rgb ? [rgb] : [])]) {
      if (t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    }
    return new Promise<DecodedRunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const req: WorkerRequest = { type: 'run', id, feeds, rgb, decode };
      this.worker.postMessage(req, transfer);
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
}
