/**
 * Ultralytics YOLO export decoder. Layouts (Ultralytics docs, "Export" and the ONNX heads in
 * ultralytics/nn/modules/head.py):
 * - v8 / v11: one output `[1, 4 + C, N]`, channel-major: cx, cy, w, h in model-input pixels, then
 *   one already-sigmoided score per class; no objectness.
 * - v5: one output `[1, N, 5 + C]`, anchor-major: cx, cy, w, h, objectness, then class
 *   probabilities; the score of a class is objectness × class probability.
 * Boxes are mapped back to source pixels with the preprocessing transform, then class-aware NMS.
 */
import type { Detection } from '../types.js';
import { boxToSource } from '../preprocess/transform.js';
import { ModelError } from '../util/errors.js';
import type { YoloDecoderSpec } from './spec.js';
import { checkRun, type Decoder, type OutputMap, type OutputTensor } from './types.js';

/** An output tensor with the name it was found under. */
export type NamedOutput = OutputTensor & { name: string };
import { nms, type Candidate } from './nms.js';

export function createYoloDecoder(spec: YoloDecoderSpec): Decoder {
  return (outputs, ctx) => {
    const out = pickOutput(outputs, spec.output, ctx.outputNames, 'yolo');
    const { cands, nan, read } = spec.version === 'v5' ? candidatesV5(out, spec.scoreThreshold, ctx.labels.length) : candidatesV8(out, spec.scoreThreshold, ctx.labels.length);
    checkRun(out.name, nan, read, cands);
    const kept = nms(cands, { iouThreshold: spec.iouThreshold, maxDetections: spec.maxDetections, classAgnostic: spec.classAgnosticNms });
    return kept.map((c): Detection => ({
      classId: c.classId,
      label: ctx.labels[c.classId] ?? `class${c.classId}`,
      score: c.score,
      box: boxToSource(ctx.transform, c.box),
    }));
  };
}

/**
 * The class count the tensor implies must be the labels' (when the metadata lists labels): the two
 * layouts are transposes of each other, so a wrong decoder.version reads anchors as classes and
 * gives detections of class 635 with scores in the hundreds instead of an error.
 */
function checkClasses(out: OutputTensor, layout: string, classes: number, labelCount: number): void {
  if (classes < 1 || (labelCount > 0 && classes !== labelCount)) {
    const want = labelCount > 0 ? `C = ${labelCount} (the labels in the metadata)` : 'C ≥ 1';
    throw new ModelError(`Expected a yolo ${layout} output with ${want} but received [${out.dims.join(', ')}], which gives C = ${classes}; check decoder.version in the model's metadata (v5 is [1, N, 5+C], v8/v11 [1, 4+C, N]) and that labels lists one name per class`);
  }
}

/** The candidates above the threshold, and the NaN values among the `read` scores looked at. */
interface Read { cands: Candidate[]; nan: number; read: number }

function candidatesV8(out: OutputTensor, threshold: number, labelCount: number): Read {
  const [batch, channels, n] = expect3d(out, 'yolo v8/v11 [1, 4+C, N]');
  if (batch !== 1) {
    throw new ModelError(`Expected a yolo v8/v11 output [1, 4+C, N] with batch 1 but received [${out.dims.join(', ')}]; check decoder.version in the model's metadata`);
  }
  checkClasses(out, 'v8/v11 [1, 4+C, N]', channels - 4, labelCount);
  const d = out.data;
  const classes = channels - 4;
  const cands: Candidate[] = [];
  let nan = 0;
  for (let i = 0; i < n; i++) {
    let best = -1, bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = d[(4 + c) * n + i];
      if (s > bestScore) { bestScore = s; best = c; } else if (s !== s) nan++;
    }
    if (bestScore < threshold) continue;
    cands.push({ classId: best, score: bestScore, box: centerBox(d[i], d[n + i], d[2 * n + i], d[3 * n + i]) });
  }
  return { cands, nan, read: n * classes };
}

function candidatesV5(out: OutputTensor, threshold: number, labelCount: number): Read {
  const [batch, n, stride] = expect3d(out, 'yolo v5 [1, N, 5+C]');
  if (batch !== 1) {
    throw new ModelError(`Expected a yolo v5 output [1, N, 5+C] with batch 1 but received [${out.dims.join(', ')}]; check decoder.version in the model's metadata`);
  }
  checkClasses(out, 'v5 [1, N, 5+C]', stride - 5, labelCount);
  const d = out.data;
  const cands: Candidate[] = [];
  let nan = 0, read = n;
  for (let i = 0; i < n; i++) {
    const o = i * stride;
    const objectness = d[o + 4];
    // A NaN objectness passed `objectness < threshold` and came out as a detection with a NaN score.
    if (!(objectness >= threshold)) {
      if (objectness !== objectness) nan++;
      continue;
    }
    let best = -1, bestScore = -Infinity;
    read += stride - 5;
    for (let c = 5; c < stride; c++) {
      const s = d[o + c];
      if (s > bestScore) { bestScore = s; best = c - 5; } else if (s !== s) nan++;
    }
    const score = objectness * bestScore;
    // Infinity × 0 is NaN: kept by `score < threshold`, it came out as a detection with a NaN score.
    if (!(score >= threshold)) {
      if (score !== score) nan++;
      continue;
    }
    cands.push({ classId: best, score, box: centerBox(d[o], d[o + 1], d[o + 2], d[o + 3]) });
  }
  return { cands, nan, read };
}

function centerBox(cx: number, cy: number, w: number, h: number) {
  return { x: cx - w / 2, y: cy - h / 2, w, h };
}

function expect3d(out: OutputTensor, what: string): [number, number, number] {
  if (out.dims.length !== 3) throw new ModelError(`Expected a 3-d output ${what} but received dims [${out.dims.join(', ')}]`);
  const [a, b, c] = out.dims;
  if (out.data.length < a * b * c) throw new ModelError(`Output data holds ${out.data.length} values, fewer than its dims [${out.dims.join(', ')}] need`);
  return [a, b, c];
}

/** The named output, or the model's first output when no name is given. Shared by single-output decoders. */
export function pickOutput(outputs: OutputMap, name: string | undefined, outputNames: readonly string[], decoder: string): NamedOutput {
  const key = name ?? outputNames[0] ?? Object.keys(outputs)[0];
  const out = key === undefined ? undefined : outputs[key];
  if (!out || key === undefined) {
    throw new ModelError(`The ${decoder} decoder expected an output named ${JSON.stringify(key)} but the model gave ${JSON.stringify(Object.keys(outputs))}; fix decoder.output in the model's metadata`);
  }
  return { name: key, dims: out.dims, data: out.data };
}
