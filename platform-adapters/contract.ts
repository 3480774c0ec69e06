/**
 * The platform adapter contract: one interface for every runtime (ONNX Runtime with its execution
 * providers, TensorRT engines on Jetson, TFLite, Core ML). Every adapter passes the same contract
 * suite (test/contract/).
 */

export type TensorType = 'float32' | 'float16' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool';

export interface TensorData {
  type: TensorType;
  dims: number[];
  data: Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array;
}

export interface TensorInfo {
  name: string;
  type: TensorType | 'unknown';
  /** Static dims where known; -1 for a dynamic axis. */
  dims: number[];
}

export interface SessionInfo {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** What the configuration asked for, in order of preference. */
  requestedProviders: string[];
  /** The provider the session actually runs on. */
  provider: string;
  /** Why earlier providers in the list were passed over (provider → reason). */
  fallbacks: Array<{ provider: string; reason: string }>;
}

export interface RunResult {
  outputs: Record<string, TensorData>;
  /** Time spent inside the runtime's run call, in milliseconds. */
  inferMs: number;
}

export interface AdapterSession {
  readonly info: SessionInfo;
  run(feeds: Record<string, TensorData>): Promise<RunResult>;
  dispose(): Promise<void>;
}

export interface AdapterCapabilities {
  providers: string[];
  precisions: Array<'fp32' | 'fp16' | 'int8'>;
  /** Model file formats this adapter loads. */
  formats: string[];
}

export interface ProbeResult {
  available: boolean;
  /** When unavailable: what is missing and how to get it. */
  reason?: string;
}

export interface CreateSessionOptions {
  modelPath: string;
  /** Providers in order of preference; a later one is used only when it is listed (no silent fallback). */
  providers?: string[];
  intraOpThreads?: number;
  /** Run one inference with zeros at load so the first frame does not pay for lazy initialisation. */
  warmUp?: boolean;
  /** Precision to build for, where the adapter compiles the model itself (TensorRT engines); others ignore it. */
  precision?: 'fp32' | 'fp16' | 'int8';
  /**
   * A run not answered within this time rejects (code E_INFER_TIMEOUT) and closes the session, its
   * worker stopped. The first run after a load without warm-up is not timed. No limit when absent.
   */
  runTimeoutMs?: number;
  /**
   * Gives the load up (a time limit on OTA loads: detector.loadTimeoutMs): createSession rejects with
   * E_LOAD_ABORTED and whatever it started is stopped (the worker thread, an engine build).
   */
  signal?: AbortSignal;
}

export interface PlatformAdapter {
  readonly name: string;
  probe(): Promise<ProbeResult>;
  capabilities(): AdapterCapabilities;
  createSession(opts: CreateSessionOptions): Promise<AdapterSession>;
}
