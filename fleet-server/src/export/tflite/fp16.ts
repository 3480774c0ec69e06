/**
 * FP16 weights for TFLite, the way TFLite's own float16 post-training quantization stores them:
 * each float constant becomes a FLOAT16 tensor followed by a DEQUANTIZE op that yields float32
 * (TFLite docs, "Post-training float16 quantization"); kernels and delegates that can compute in
 * half precision fold the DEQUANTIZE away, the others dequantize once at load.
 */
import { toHalfBits } from '../../quantize/fp16.js';
import { Op, TensorType } from './schema.js';
import type { TflModel, TflOperator } from './model.js';

/** Converts float constants with at least `minElements` elements; returns how many were converted. */
export function weightsToFp16(model: TflModel, minElements = 16): number {
  const prologue: TflOperator[] = [];
  const n = model.tensors.length;
  for (let i = 0; i < n; i++) {
    const t = model.tensors[i];
    if (!t.data || t.type !== TensorType.FLOAT32 || t.data.length / 4 < minElements) continue;
    const f32 = new Float32Array(t.data.slice().buffer);
    const half = new Uint16Array(f32.length);
    for (let k = 0; k < f32.length; k++) half[k] = toHalfBits(f32[k]);
    model.tensors.push({ name: `${t.name}/fp16`, shape: [...t.shape], type: TensorType.FLOAT16, data: new Uint8Array(half.buffer) });
    t.data = undefined;
    prologue.push({ code: Op.DEQUANTIZE, inputs: [model.tensors.length - 1], outputs: [i] });
  }
  model.operators.unshift(...prologue);
  return prologue.length;
}
