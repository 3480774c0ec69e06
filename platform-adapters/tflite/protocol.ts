import type { TensorData, TensorInfo } from '../contract.js';

/** Messages between the main thread and the LiteRT.js worker. */
export type TfliteRequest =
  | { type: 'load'; modelPath: string; threads: number; warmUp: boolean }
  | { type: 'run'; id: number; feeds: Record<string, TensorData> };

export type TfliteReply =
  | { type: 'loaded'; inputs: TensorInfo[]; outputs: TensorInfo[] }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; inferMs: number }
  | { type: 'run-failed'; id: number; message: string };
