/**
 * CenterNet-style post-processed detections `[1, N, 6]`: x1, y1, x2, y2 in model-input pixels, score,
 * class id, one row per detection (the layout the TF.js CenterNet from @vladmandic/human produces
 * after its own top-k; see its `models/centernet.json` outputs). Rows with score below the threshold
 * are dropped, then class-aware NMS as a safety net: the model already ran its own peak extraction.
 */
import type { Detection } from '../types.js';
import { boxToSource } from '../preprocess/transform.js';
import { ModelError } from '../util/errors.js';
import type { CenterNetDecoderSpec, CenterNetHeadsDecoderSpec } from './spec.js';
import { checkRun, type DecodeContext, type Decoder } from './types.js';
import { nms, type Candidate } from './nms.js';
import { pickOutput } from './yolo.js';

export function createCenterNetDecoder(spec: CenterNetDecoderSpec): Decoder {
  return (outputs, ctx) => {
    const out = pickOutput(outputs, spec.output, ctx.outputNames, 'centernet');
    const dims = out.dims;
    const rowLen = dims[dims.length - 1];
    if (rowLen !== 6 || (dims.length === 3 && dims[0] !== 1) || dims.length < 2 || dims.length > 3) {
      throw new ModelError(`Expected a centernet output [1, N, 6] (x1, y1, x2, y2, score, class) but received [${dims.join(', ')}]; check decoder.type in the model's metadata`);
    }
    const n = Math.floor(out.data.length / 6);
    const d = out.data;
    const cands: Candidate[] = [];
    let nan = 0;
    for (let i = 0; i < n; i++) {
      const o = i * 6;
      const score = d[o + 4];
      if (!(score >= spec.scoreThreshold)) {
        if (score !== score) nan++;
        continue;
      }
      const x1 = Math.min(d[o], d[o + 2]), x2 = Math.max(d[o], d[o + 2]);
      const y1 = Math.min(d[o + 1], d[o + 3]), y2 = Math.max(d[o + 1], d[o + 3]);
      cands.push({ classId: Math.round(d[o + 5]), score, box: { x: x1, y: y1, w: x2 - x1, h: y2 - y1 } });
    }
    checkRun(out.name, nan, n, cands);
    return finish(cands, spec, ctx);
  };
}

function finish(cands: Candidate[], spec: { iouThreshold: number; maxDetections: number }, ctx: DecodeContext): Detection[] {
  const kept = nms(cands, { iouThreshold: spec.iouThreshold, maxDetections: spec.maxDetections });
  return kept.map((c): Detection => ({
    classId: c.classId,
    label: ctx.labels[c.classId] ?? `class${c.classId}`,
    score: c.score,
    box: boxToSource(ctx.transform, c.box),
  }));
}

/**
 * The decoding tail of the CenterNet graph, done here for exports that stop at its heads: 3×3 peaks
 * of the heatmap over cells × classes, the top k of them, and boxes from the side distances. The
 * score threshold is applied before the peak test (the top k above a threshold are the top k that
 * pass it), so a 128×128×80 heatmap costs one pass over its values.
 */
export function createCenterNetHeadsDecoder(spec: CenterNetHeadsDecoderSpec): Decoder {
  return (outputs, ctx) => {
    const hm = outputs[spec.heatmap];
    const bx = outputs[spec.boxes];
    if (!hm || !bx) {
      throw new ModelError(`The centernet-heads decoder expected outputs ${JSON.stringify(spec.heatmap)} and ${JSON.stringify(spec.boxes)} but the model gave ${JSON.stringify(Object.keys(outputs))}; fix decoder.heatmap/boxes in the model's metadata`);
    }
    const nchw = spec.layout === 'nchw';
    const [, a, b, c] = hm.dims;
    const [h, w, classes] = nchw ? [b, c, a] : [a, b, c];
    const boxDims = nchw ? [bx.dims[2], bx.dims[3], bx.dims[1]] : [bx.dims[1], bx.dims[2], bx.dims[3]];
    if (hm.dims.length !== 4 || bx.dims.length !== 4 || hm.dims[0] !== 1 || bx.dims[0] !== 1 || boxDims[0] !== h || boxDims[1] !== w || boxDims[2] !== 4) {
      throw new ModelError(`Expected a ${spec.layout} heatmap [1, ${nchw ? 'C, H, W' : 'H, W, C'}] (batch 1) and boxes with 4 sides on the same grid but received [${hm.dims.join(', ')}] and [${bx.dims.join(', ')}]; check decoder.layout in the model's metadata`);
    }
    const d = hm.data;
    const plane = h * w;
    // Index of (row y, col x, class k) in either layout.
    const at = nchw ? (y: number, x: number, k: number) => k * plane + y * w + x : (y: number, x: number, k: number) => (y * w + x) * classes + k;
    const peaks: Array<{ score: number; y: number; x: number; k: number }> = [];
    let nan = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (!(v >= spec.scoreThreshold)) {
        if (v !== v) nan++;
        continue;
      }
      const k = nchw ? Math.floor(i / plane) : i % classes;
      const cell = nchw ? i % plane : Math.floor(i / classes);
      const y = Math.floor(cell / w), x = cell % w;
      let peak = true;
      for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1) && peak; yy++) {
        for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) {
          if (d[at(yy, xx, k)] > v) { peak = false; break; }
        }
      }
      if (peak) peaks.push({ score: v, y, x, k });
    }
    peaks.sort((p, q) => q.score - p.score);
    const sides = bx.data;
    const side = nchw ? (y: number, x: number, j: number) => sides[j * plane + y * w + x] : (y: number, x: number, j: number) => sides[(y * w + x) * 4 + j];
    const cands: Candidate[] = peaks.slice(0, spec.topK).map((p) => {
      const cx = spec.stride * p.x, cy = spec.stride * p.y;
      const x1 = cx - side(p.y, p.x, 0), y1 = cy - side(p.y, p.x, 1);
      const x2 = cx + side(p.y, p.x, 2), y2 = cy + side(p.y, p.x, 3);
      return { classId: p.k, score: p.score, box: { x: Math.min(x1, x2), y: Math.min(y1, y2), w: Math.abs(x2 - x1), h: Math.abs(y2 - y1) } };
    });
    checkRun(spec.heatmap, nan, d.length, cands);
    return finish(cands, spec, ctx);
  };
}
