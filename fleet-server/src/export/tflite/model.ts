/** In-memory TFLite model (one subgraph), written to a flatbuffer by writer.ts. */

export interface TflQuant {
  scale: number[];
  zeroPoint: number[];
  /** Axis of per-channel scales (schema.fbs QuantizationParameters.quantized_dimension). */
  dim?: number;
  min?: number[];
  max?: number[];
}

export interface TflTensor {
  name: string;
  shape: number[];
  /** schema.ts TensorType. */
  type: number;
  /** Constant contents (little-endian), absent for activations. */
  data?: Uint8Array;
  quant?: TflQuant;
}

/** One field of a builtin options table: id from schema.ts F, and how to write it. */
export type TflOptionField = { id: number; kind: 'i8' | 'i32'; value: number } | { id: number; kind: 'i32vec'; value: number[] };

export interface TflOperator {
  /** schema.ts Op (BuiltinOperator). */
  code: number;
  inputs: number[];
  outputs: number[];
  options?: { type: number; fields: TflOptionField[] };
  /** The ONNX node it was converted from, for messages (not written to the file). */
  onnxNode?: string;
}

export interface TflModel {
  description: string;
  tensors: TflTensor[];
  operators: TflOperator[];
  inputs: number[];
  outputs: number[];
}
