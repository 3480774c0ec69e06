import type { TensorData, TensorInfo } from '../contract.js';

/** Messages between the main thread and the ONNX Runtime worker. */
export type WorkerRequest =
  | { type: 'load'; modelPath: string; providers: string[]; intraOpThreads?: number; warmUp: boolean }
  | { type: 'run'; id: number; feeds: Record<string, TensorData> }
  | { type: 'release' };

export type WorkerReply =
  | { type: 'loaded'; inputs: TensorInfo[]; outputs: TensorInfo[]; provider: string; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'load-failed'; fallbacks: Array<{ provider: string; reason: string }> }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; inferMs: number }
  | { type: 'run-failed'; id: number; message: string }
  | { type: 'released' }
  | { type: 'fatal'; message: string };
