/**
 * Facts from tensorflow/lite/schema/schema.fbs (schema version 3, file_identifier "TFL3") that the
 * writer needs. Field ids are the declaration order inside each table (FlatBuffers assigns ids 0, 1,
 * 2, ... in order; a union takes two ids: its `_type` byte, then the value).
 */
export const TFL_FILE_IDENTIFIER = 'TFL3';
export const TFL_SCHEMA_VERSION = 3;

/** enum TensorType : byte. */
export const TensorType = { FLOAT32: 0, FLOAT16: 1, INT32: 2, UINT8: 3, INT64: 4, BOOL: 6, INT16: 7, INT8: 9 } as const;

/** enum BuiltinOperator : int32 (only the codes we emit). */
export const Op = {
  ADD: 0, CONCATENATION: 2, CONV_2D: 3, DEPTHWISE_CONV_2D: 4, DEQUANTIZE: 6, LOGISTIC: 14, MAX_POOL_2D: 17,
  MUL: 18, RELU: 19, RELU_N1_TO_1: 20, RELU6: 21, RESHAPE: 22, RESIZE_BILINEAR: 23, PAD: 34, TRANSPOSE: 39,
  MEAN: 40, SUB: 41, DIV: 42, MAXIMUM: 55, MINIMUM: 57, RESIZE_NEAREST_NEIGHBOR: 97, QUANTIZE: 114, HARD_SWISH: 117,
} as const;

/** The BuiltinOperator name of an op code (for messages), e.g. 41 → SUB. */
export function opName(code: number): string {
  return Object.entries(Op).find(([, c]) => c === code)?.[0] ?? `BuiltinOperator ${code}`;
}

/** union BuiltinOptions: index of each options table (NONE = 0, then declaration order from 1). */
export const Options = {
  Conv2DOptions: 1, DepthwiseConv2DOptions: 2, Pool2DOptions: 5, ConcatenationOptions: 10, AddOptions: 11,
  ResizeBilinearOptions: 15, ReshapeOptions: 17, MulOptions: 21, PadOptions: 22, TransposeOptions: 26,
  ReducerOptions: 27, SubOptions: 28, DivOptions: 29, DequantizeOptions: 38, MaximumMinimumOptions: 39,
  ResizeNearestNeighborOptions: 74, QuantizeOptions: 89,
} as const;

/** enum Padding : byte { SAME, VALID }. */
export const Padding = { SAME: 0, VALID: 1 } as const;

/** Field ids per table. */
export const F = {
  Model: { version: 0, operator_codes: 1, subgraphs: 2, description: 3, buffers: 4 },
  OperatorCode: { deprecated_builtin_code: 0, custom_code: 1, version: 2, builtin_code: 3 },
  SubGraph: { tensors: 0, inputs: 1, outputs: 2, operators: 3, name: 4 },
  Tensor: { shape: 0, type: 1, buffer: 2, name: 3, quantization: 4 },
  QuantizationParameters: { min: 0, max: 1, scale: 2, zero_point: 3, details_type: 4, details: 5, quantized_dimension: 6 },
  Operator: { opcode_index: 0, inputs: 1, outputs: 2, builtin_options_type: 3, builtin_options: 4 },
  Buffer: { data: 0 },
  Conv2DOptions: { padding: 0, stride_w: 1, stride_h: 2, fused_activation_function: 3, dilation_w_factor: 4, dilation_h_factor: 5 },
  DepthwiseConv2DOptions: { padding: 0, stride_w: 1, stride_h: 2, depth_multiplier: 3, fused_activation_function: 4, dilation_w_factor: 5, dilation_h_factor: 6 },
  Pool2DOptions: { padding: 0, stride_w: 1, stride_h: 2, filter_width: 3, filter_height: 4, fused_activation_function: 5 },
  ConcatenationOptions: { axis: 0, fused_activation_function: 1 },
  ResizeOptions: { align_corners: 2, half_pixel_centers: 3 },
  ResizeNearestNeighborOptions: { align_corners: 0, half_pixel_centers: 1 },
  ReshapeOptions: { new_shape: 0 },
  ReducerOptions: { keep_dims: 0 },
} as const;

/** BuiltinOperator codes above 127 live only in `builtin_code`; `deprecated_builtin_code` then holds 127 (PLACEHOLDER_FOR_GREATER_OP_CODES). */
export const PLACEHOLDER_FOR_GREATER_OP_CODES = 127;
