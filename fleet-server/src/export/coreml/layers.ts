/**
 * Core ML NeuralNetwork layers as we emit them (a small subset of NeuralNetwork.proto), in Core ML's
 * per-sample CHW layout. Built from the TFLite graph (which already has static shapes, folded
 * transposes and fused activations): a TFLite NHWC [1,H,W,C] tensor is the Core ML blob [C,H,W].
 */
export type CmlPrecision = 'fp32' | 'fp16' | 'int8';

export interface CmlWeights {
  /** Float values in Core ML order; how they are stored depends on the precision. */
  values: Float32Array;
  /** Output channels, for per-channel 8-bit linear quantization. */
  channels: number;
  /** Read back from a file that stores them as 8-bit linear (QuantizationParams): `values` are dequantized. */
  quantized?: boolean;
}

export type CmlLayer =
  | { kind: 'conv'; name: string; input: string; output: string; outC: number; kernelC: number; groups: number; kernel: [number, number]; stride: [number, number]; same: boolean; weights: CmlWeights; bias: CmlWeights }
  | { kind: 'activation'; name: string; input: string; output: string; fn: 'relu' | 'sigmoid' }
  | { kind: 'clip'; name: string; input: string; output: string; min: number; max: number }
  /** Elementwise sum; with one input, input + alpha. */
  | { kind: 'add'; name: string; inputs: string[]; output: string; alpha?: number }
  /** Elementwise product, broadcasting [C,1,1] over [C,H,W] (the first input has the output shape); with one input, alpha · input. */
  | { kind: 'multiply'; name: string; inputs: string[]; output: string; alpha?: number }
  /** Global average pooling: [C,H,W] → [C,1,1]. */
  | { kind: 'avgpool-global'; name: string; input: string; output: string }
  /** Bilinear upsampling by integer factors, LinearUpsampleMode DEFAULT (output pixel i reads input i / factor, clamped). */
  | { kind: 'upsample'; name: string; input: string; output: string; factor: [number, number] }
  | { kind: 'maxpool'; name: string; input: string; output: string; kernel: [number, number]; stride: [number, number]; same: boolean }
  | { kind: 'concat'; name: string; inputs: string[]; output: string }
  | { kind: 'const'; name: string; output: string; shape: [number, number, number]; data: CmlWeights };

export interface CmlFeature { name: string; shape: number[] }

export interface CmlModel {
  inputs: CmlFeature[];
  outputs: CmlFeature[];
  layers: CmlLayer[];
  precision: CmlPrecision;
  metadata: Record<string, string>;
}
