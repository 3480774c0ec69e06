import type { TensorData, TensorInfo } from '../contract.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import type { DecoderSpec } from '../../agent/src/decode/spec.js';
import type { ResizeTransform } from '../../agent/src/preprocess/transform.js';
import type { Detection } from '../../agent/src/types.js';

/** Decode in the worker too: only the detections travel back. */
export interface DecodeRequest {
  spec: DecoderSpec;
  labels: string[];
  transform: ResizeTransform;
}

/** Messages between the main thread and the ONNX Runtime worker. */
export type WorkerRequest =
  | { type: 'load'; modelPath: string; providers: string[]; intraOpThreads?: number; warmUp: boolean }
  /** `rgb`: packed RGB at model size that the worker turns into the named input (layout, normalisation). */
  | { type: 'run'; id: number; feeds: Record<string, TensorData>; rgb?: { input: string; data: Uint8Array; spec: PreprocessSpec }; decode?: DecodeRequest }
  | { type: 'release' }
  /** Ends the worker thread; runs still queued behind it are skipped (see `stopFlag`). */
  | { type: 'stop' };

/**
 * workerData of the ONNX Runtime worker: `stopFlag` (Int32Array over a SharedArrayBuffer) is set to 1
 * with the `stop` message. The worker reads it before each run, so the runs queued behind a hung one
 * are not run once it returns: the stop message itself waits behind them in the port.
 */
export interface OrtWorkerData {
  stopFlag: Int32Array;
}

export type WorkerReply =
  | { type: 'loaded'; inputs: TensorInfo[]; outputs: TensorInfo[]; provider: string; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'load-failed'; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; inferMs: number; detections?: Detection[]; decodeMs?: number }
  | { type: 'run-failed'; id: number; message: string; code?: string }
  | { type: 'released' }
  | { type: 'fatal'; message: string };
