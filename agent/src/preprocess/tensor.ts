/**
 * The per-pixel half of preprocessing: packed RGB at model size → the model's layout, channel order
 * and normalisation. Pure and free of sharp, so the inference worker can run it (a 640x640 frame is
 * over a million multiply-adds: not something for the main thread).
 */
import type { PreprocessSpec } from '../model/metadata.js';

/**
 * The model input size: preprocess width/height, each rounded up to a multiple of
 * preprocess.multipleOf when it is given. Dynamic-size models such as DB text detectors need
 * multiples of 32 (their feature maps are upsampled by 2 and added, so 600 gives 75 against 76);
 * the frame is resized (letterboxed or stretched) into the rounded size.
 */
export function modelInputSize(spec: Pick<PreprocessSpec, 'width' | 'height' | 'multipleOf'>): { width: number; height: number } {
  const m = spec.multipleOf ?? 1;
  return { width: Math.ceil(spec.width / m) * m, height: Math.ceil(spec.height / m) * m };
}

/** Packed RGB at model size → tensor in the model's layout, order and normalisation. */
export function toTensor(rgb: Uint8Array, spec: PreprocessSpec): { data: Float32Array | Uint8Array; dims: number[] } {
  const { width: w, height: h } = modelInputSize(spec);
  const n = w * h;
  const bgr = spec.channelOrder === 'BGR';
  const nchw = spec.layout === 'NCHW';
  const dims = nchw ? [1, 3, h, w] : [1, h, w, 3];
  if (spec.dtype === 'uint8') {
    if (!nchw && !bgr) return { data: rgb, dims };
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        const v = rgb[i * 3 + (bgr ? 2 - c : c)];
        out[nchw ? c * n + i : i * 3 + c] = v;
      }
    }
    return { data: out, dims };
  }
  // Fold (pixel * scale - mean) / std into one multiply-add per channel.
  const mul = [0, 1, 2].map((c) => spec.scale / spec.std[c]);
  const add = [0, 1, 2].map((c) => -spec.mean[c] / spec.std[c]);
  const out = new Float32Array(n * 3);
  const s0 = bgr ? 2 : 0, s2 = bgr ? 0 : 2;
  const [m0, m1, m2] = mul, [a0, a1, a2] = add;
  if (nchw) {
    for (let i = 0, p = 0; i < n; i++, p += 3) {
      out[i] = rgb[p + s0] * m0 + a0;
      out[n + i] = rgb[p + 1] * m1 + a1;
      out[2 * n + i] = rgb[p + s2] * m2 + a2;
    }
  } else {
    for (let p = 0; p < n * 3; p += 3) {
      out[p] = rgb[p + s0] * m0 + a0;
      out[p + 1] = rgb[p + 1] * m1 + a1;
      out[p + 2] = rgb[p + s2] * m2 + a2;
    }
  }
  return { data: out, dims };
}
