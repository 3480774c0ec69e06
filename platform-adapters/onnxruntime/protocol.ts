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
  | { type: 'release' };

export type WorkerReply =
  | { type: 'loaded'; inputs: TensorInfo[]; outputs: TensorInfo[]; provider: string; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'load-failed'; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; inferMs: number; detections?: Detection[]; decodeMs?: number }
  | { type: 'run-failed'; id: number; message: string }
  | { type: 'released' }
  | { type: 'fatal'; message: string };
