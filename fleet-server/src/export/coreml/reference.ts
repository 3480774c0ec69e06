/**
 * Reference evaluation of the Core ML layers we emit, in float64 over CHW blobs, following the layer
 * definitions in NeuralNetwork.proto (convolution with groups; "same" padding BOTTOM_RIGHT_HEAVY puts
 * the odd pad cell at the end, as TensorFlow does; max pooling ignores padded cells; Add/Multiply
 * broadcast size-1 axes; bilinear upsampling in LinearUpsampleMode DEFAULT). Used to prove
 * an exported `.mlmodel` computes what the ONNX model computes, since Core ML itself only runs on Apple.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import type { CmlLayer, CmlModel } from './layers.js';

export interface Blob { shape: [number, number, number]; data: Float64Array }

function samePad(size: number, k: number, s: number): { out: number; before: number } {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return { out, before: Math.floor(total / 2) };
}

function conv(x: Blob, l: Extract<CmlLayer, { kind: 'conv' }>): Blob {
  const [C, H, W] = x.shape;
  const [kh, kw] = l.kernel, [sh, sw] = l.stride;
  const ph = l.same ? samePad(H, kh, sh) : { out: Math.floor((H - kh) / sh) + 1, before: 0 };
  const pw = l.same ? samePad(W, kw, sw) : { out: Math.floor((W - kw) / sw) + 1, before: 0 };
  const outPerGroup = l.outC / l.groups, inPerGroup = C / l.groups;
  if (inPerGroup !== l.kernelC) throw new ModelError(`conv ${l.name}: ${C} input channels / ${l.groups} groups != kernelChannels ${l.kernelC}`);
  const OH = ph.out, OW = pw.out;
  const out = new Float64Array(l.outC * OH * OW);
  const w = l.weights.values, b = l.bias.values, xd = x.data;
  // Each output plane starts at its bias and takes one weight × shifted input plane at a time, in the
  // order (ci, ky, kx) a per-output sum would use, so every output adds the same terms in the same
  // order (the same float64 result) while the inner loop walks contiguous rows. Four output planes of
  // a group take each input row together: one read of it for four sums, each sum unchanged.
  const n = OH * OW;
  for (let o = 0; o < l.outC;) {
    const g = Math.floor(o / outPerGroup);
    const block = Math.min(4, (g + 1) * outPerGroup - o);
    for (let k = 0; k < block; k++) out.fill(b[o + k], (o + k) * n, (o + k + 1) * n);
    const p0 = o * n, p1 = p0 + n, p2 = p1 + n, p3 = p2 + n;
    for (let ci = 0; ci < inPerGroup; ci++) {
      const cBase = (g * inPerGroup + ci) * H * W;
      for (let ky = 0; ky < kh; ky++) {
        // Output rows y whose input row y·sh + ky − before lies inside the image.
        const y0 = Math.max(0, Math.ceil((ph.before - ky) / sh)), y1 = Math.min(OH - 1, Math.floor((H - 1 + ph.before - ky) / sh));
        for (let kx = 0; kx < kw; kx++) {
          const wAt = (k: number) => w[(((o + k) * inPerGroup + ci) * kh + ky) * kw + kx];
          const x0 = Math.max(0, Math.ceil((pw.before - kx) / sw)), x1 = Math.min(OW - 1, Math.floor((W - 1 + pw.before - kx) / sw));
          if (block === 4) {
            const w0 = wAt(0), w1 = wAt(1), w2 = wAt(2), w3 = wAt(3);
            for (let y = y0; y <= y1; y++) {
              const row = cBase + (y * sh + ky - ph.before) * W + kx - pw.before;
              const orow = y * OW;
              for (let xx = x0; xx <= x1; xx++) {
                const v = xd[row + xx * sw], i = orow + xx;
                out[p0 + i] += w0 * v; out[p1 + i] += w1 * v; out[p2 + i] += w2 * v; out[p3 + i] += w3 * v;
              }
            }
          } else {
            for (let k = 0; k < block; k++) {
              const wv = wAt(k), pk = p0 + k * n;
              for (let y = y0; y <= y1; y++) {
                const row = cBase + (y * sh + ky - ph.before) * W + kx - pw.before;
                const orow = pk + y * OW;
                for (let xx = x0; xx <= x1; xx++) out[orow + xx] += wv * xd[row + xx * sw];
              }
            }
          }
        }
      }
    }
    o += block;
  }
  return { shape: [l.outC, ph.out, pw.out], data: out };
}

function maxpool(x: Blob, l: Extract<CmlLayer, { kind: 'maxpool' }>): Blob {
  const [C, H, W] = x.shape;
  const [kh, kw] = l.kernel, [sh, sw] = l.stride;
  const ph = l.same ? samePad(H, kh, sh) : { out: Math.floor((H - kh) / sh) + 1, before: 0 };
  const pw = l.same ? samePad(W, kw, sw) : { out: Math.floor((W - kw) / sw) + 1, before: 0 };
  const out = new Float64Array(C * ph.out * pw.out);
  for (let c = 0; c < C; c++) for (let y = 0; y < ph.out; y++) for (let xx = 0; xx < pw.out; xx++) {
    let m = -Infinity;
    for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const iy = y * sh + ky - ph.before, ix = xx * sw + kx - pw.before;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) m = Math.max(m, x.data[(c * H + iy) * W + ix]);
    }
    out[(c * ph.out + y) * pw.out + xx] = m;
  }
  return { shape: [C, ph.out, pw.out], data: out };
}

/** Bilinear, LinearUpsampleMode DEFAULT with integer factors: output i samples input i / factor, clamped to the last cell. */
function upsample(x: Blob, [fh, fw]: [number, number]): Blob {
  const [C, H, W] = x.shape;
  const oh = H * fh, ow = W * fw;
  const out = new Float64Array(C * oh * ow);
  // The column taps and weights are the same on every row: computed once.
  const x0s = new Int32Array(ow), x1s = new Int32Array(ow), dxs = new Float64Array(ow);
  for (let xx = 0; xx < ow; xx++) {
    const sx = xx / fw, x0 = Math.floor(sx);
    x0s[xx] = x0; x1s[xx] = Math.min(W - 1, x0 + 1); dxs[xx] = sx - x0;
  }
  const d = x.data;
  for (let c = 0; c < C; c++) for (let y = 0; y < oh; y++) {
    const sy = y / fh, y0 = Math.floor(sy), y1 = Math.min(H - 1, y0 + 1), dy = sy - y0;
    const r0 = (c * H + y0) * W, r1 = (c * H + y1) * W, o = (c * oh + y) * ow;
    for (let xx = 0; xx < ow; xx++) {
      const x0 = x0s[xx], x1 = x1s[xx], dx = dxs[xx];
      out[o + xx] = (1 - dy) * ((1 - dx) * d[r0 + x0] + dx * d[r0 + x1]) + dy * ((1 - dx) * d[r1 + x0] + dx * d[r1 + x1]);
    }
  }
  return { shape: [C, oh, ow], data: out };
}

/** `fn` of every element, in a plain loop (in place of TypedArray.prototype.map, which V8 runs far slower). */
function mapped(d: Float64Array, fn: (v: number) => number): Float64Array {
  const out = new Float64Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = fn(d[i]);
  return out;
}

export function evaluateCoreml(m: CmlModel, inputs: Record<string, Blob>): Record<string, Blob> {
  const env = new Map<string, Blob>(Object.entries(inputs));
  const get = (n: string): Blob => {
    const b = env.get(n);
    if (!b) throw new ModelError(`Core ML reference: blob ${n} is used before it is produced`);
    return b;
  };
  for (const l of m.layers) {
    switch (l.kind) {
      case 'conv': env.set(l.output, conv(get(l.input), l)); break;
      case 'maxpool': env.set(l.output, maxpool(get(l.input), l)); break;
      case 'activation': {
        const x = get(l.input);
        env.set(l.output, { shape: x.shape, data: l.fn === 'relu' ? mapped(x.data, (v) => Math.max(0, v)) : mapped(x.data, (v) => 1 / (1 + Math.exp(-v))) });
        break;
      }
      case 'clip': {
        const x = get(l.input);
        const { min, max } = l;
        env.set(l.output, { shape: x.shape, data: mapped(x.data, (v) => Math.min(max, Math.max(min, v))) });
        break;
      }
      case 'add': case 'multiply': {
        const f = l.kind === 'add' ? (a: number, b: number) => a + b : (a: number, b: number) => a * b;
        const [a, ...rest] = l.inputs.map(get);
        const alpha = l.alpha ?? 0;
        if (rest.length === 0) { env.set(l.output, { shape: a.shape, data: mapped(a.data, (v) => f(v, alpha)) }); break; }
        const data = a.data.slice();
        const [C, H, W] = a.shape;
        for (const b of rest) {
          // Broadcast a size-1 axis of b over a (MultiplyLayer: [C,1,1], [1,H,W] and equal shapes).
          const [bc, bh, bw] = b.shape;
          if ((bc !== C && bc !== 1) || (bh !== H && bh !== 1) || (bw !== W && bw !== 1)) throw new ModelError(`Core ML reference: ${l.name} cannot broadcast [${b.shape.join(',')}] over [${a.shape.join(',')}]`);
          if (bh === 1 && bw === 1) {
            // One value per channel (squeeze-excite gates, scales): the common case, without per-cell indexing.
            for (let c = 0; c < C; c++) {
              const v = b.data[bc === 1 ? 0 : c];
              for (let i = c * H * W; i < (c + 1) * H * W; i++) data[i] = f(data[i], v);
            }
            continue;
          }
          for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
            const i = (c * H + y) * W + x;
            data[i] = f(data[i], b.data[((bc === 1 ? 0 : c) * bh + (bh === 1 ? 0 : y)) * bw + (bw === 1 ? 0 : x)]);
          }
        }
        env.set(l.output, { shape: a.shape, data });
        break;
      }
      case 'avgpool-global': {
        const x = get(l.input);
        const [C, H, W] = x.shape;
        const data = new Float64Array(C);
        for (let c = 0; c < C; c++) { let s = 0; for (let i = c * H * W; i < (c + 1) * H * W; i++) s += x.data[i]; data[c] = s / (H * W); }
        env.set(l.output, { shape: [C, 1, 1], data });
        break;
      }
      case 'upsample': env.set(l.output, upsample(get(l.input), l.factor)); break;
      case 'concat': {
        const parts = l.inputs.map(get);
        const C = parts.reduce((s, p) => s + p.shape[0], 0);
        const data = new Float64Array(C * parts[0].shape[1] * parts[0].shape[2]);
        let off = 0;
        for (const p of parts) { data.set(p.data, off); off += p.data.length; }
        env.set(l.output, { shape: [C, parts[0].shape[1], parts[0].shape[2]], data });
        break;
      }
      case 'const': env.set(l.output, { shape: l.shape, data: Float64Array.from(l.data.values) }); break;
    }
  }
  return Object.fromEntries(m.outputs.map((o) => [o.name, get(o.name)]));
}
