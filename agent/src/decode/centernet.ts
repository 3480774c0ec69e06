/**
 * CenterNet-style post-processed detections `[1, N, 6]`: x1, y1, x2, y2 in model-input pixels, score,
 * class id, one row per detection (the layout the TF.js CenterNet from @vladmandic/human produces
 * after its own top-k; see its `models/centernet.json` outputs). Rows with score below the threshold
 * are dropped, then class-aware NMS as a safety net: the model already ran its own peak extraction.
 */
import type { Detection } from '../types.js';
import { boxToSource } from '../preprocess/transform.js';
import { ModelError } from '../util/errors.js';
import type { CenterNetDecoderSpec } from './spec.js';
import type { Decoder } from './types.js';
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
    for (let i = 0; i < n; i++) {
      const o = i * 6;
      const score = d[o + 4];
      if (!(score >= spec.scoreThreshold)) continue;
      const x1 = Math.min(d[o], d[o + 2]), x2 = Math.max(d[o], d[o + 2]);
      const y1 = Math.min(d[o + 1], d[o + 3]), y2 = Math.max(d[o + 1], d[o + 3]);
      cands.push({ classId: Math.round(d[o + 5]), score, box: { x: x1, y: y1, w: x2 - x1, h: y2 - y1 } });
    }
    const kept = nms(cands, { iouThreshold: spec.iouThreshold, maxDetections: spec.maxDetections });
    return kept.map((c): Detection => ({
      classId: c.classId,
      label: ctx.labels[c.classId] ?? `class${c.classId}`,
      score: c.score,
      box: boxToSource(ctx.transform, c.box),
    }));
  };
}
