/**
 * MediaPipe BlazeFace decoder (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection
 * on Mobile GPUs", 2019). Facts from MediaPipe's face_detection graphs
 * (mediapipe/modules/face_detection/face_detection.pbtxt, SsdAnchorsCalculator and
 * TensorsToDetectionsCalculator options):
 * - anchors: one grid per stride; consecutive layers with the same stride share one grid and their
 *   anchors are stacked per cell. The back (256×256) model uses strides [16, 32, 32, 32] with two
 *   anchors per layer (aspect ratio 1 plus the interpolated scale), i.e. a 16×16 grid × 2 = 512
 *   and an 8×8 grid × 6 = 384 anchors, 896 in all. `fixed_anchor_size: true`, so every anchor is
 *   1×1 and only its centre ((col + 0.5) / gridW, (row + 0.5) / gridH, anchor_offset 0.5) matters.
 * - regressors, 16 per anchor: cx, cy, w, h, then 6 key points (x, y) — right eye, left eye, nose,
 *   mouth, right ear, left ear — in model-input pixels relative to the anchor centre; divide by the
 *   input size (x_scale = y_scale = w_scale = h_scale = 256) to get normalised units.
 * - scores are logits: sigmoid, after clipping to ±100 (score_clipping_thresh).
 * - overlapping boxes are merged with weighted NMS (min_suppression_threshold 0.3).
 * Our metadata describes the grid as `strides` + `anchorsPerCell` per distinct stride.
 * Input range (configs/models/blazeface-back.meta.json): MediaPipe feeds [-1, 1]
 * (ImageToTensorCalculator output_tensor_float_range). Measured on the six face-api group photos,
 * both [-1, 1] and [0, 1] find all 22 faces, with mean scores 0.85 and 0.82; we keep [-1, 1].
 */
import type { Detection, Point } from '../types.js';
import { boxToSource, pointToSource } from '../preprocess/transform.js';
import { ModelError } from '../util/errors.js';
import type { BlazeFaceDecoderSpec } from './spec.js';
import { checkRun, type Decoder, type OutputTensor } from './types.js';
import { nms, type Candidate } from './nms.js';

export interface Anchor {
  /** Centre in normalised model-input units (0..1). */
  cx: number;
  cy: number;
}

export const BLAZEFACE_KEYPOINTS = ['rightEye', 'leftEye', 'noseTip', 'mouth', 'rightEarTragion', 'leftEarTragion'] as const;

export interface AnchorGrid {
  /** Anchor centres in output order: grids in the given order, row-major, anchors of a cell consecutive. */
  anchors: Anchor[];
  /** Anchors of each stride group, in the order of `strides` (they sum to `anchors.length`). */
  groupSizes: number[];
}

export function ssdAnchors(opts: { inputWidth: number; inputHeight: number; strides: readonly number[]; anchorsPerCell: readonly number[] }): AnchorGrid {
  const { inputWidth, inputHeight, strides, anchorsPerCell } = opts;
  if (strides.length !== anchorsPerCell.length) {
    throw new ModelError(`Expected one anchorsPerCell entry per stride but received ${strides.length} strides and ${anchorsPerCell.length} counts; fix decoder.anchors in the model's metadata`);
  }
  const anchors: Anchor[] = [];
  const groupSizes: number[] = [];
  strides.forEach((stride, g) => {
    const gridW = Math.ceil(inputWidth / stride);
    const gridH = Math.ceil(inputHeight / stride);
    for (let row = 0; row < gridH; row++) {
      for (let col = 0; col < gridW; col++) {
        for (let k = 0; k < anchorsPerCell[g]; k++) anchors.push({ cx: (col + 0.5) / gridW, cy: (row + 0.5) / gridH });
      }
    }
    groupSizes.push(gridW * gridH * anchorsPerCell[g]);
  });
  return { anchors, groupSizes };
}

export function createBlazeFaceDecoder(spec: BlazeFaceDecoderSpec): Decoder {
  if (spec.scoreOutputs.length !== spec.boxOutputs.length) {
    throw new ModelError(`Expected as many BlazeFace score outputs as box outputs but received ${spec.scoreOutputs.length} and ${spec.boxOutputs.length}; fix decoder.scoreOutputs/boxOutputs in the model's metadata`);
  }
  let grid: AnchorGrid | undefined;
  let gridFor = '';
  // Logit threshold equivalent to the score threshold: sigmoid(x) ≥ t ⇔ x ≥ ln(t / (1 - t)).
  const t = Math.min(Math.max(spec.scoreThreshold, 1e-6), 1 - 1e-6);
  const logitThreshold = Math.log(t / (1 - t));
  const scoreNames = spec.scoreOutputs.join(', ');
  return (outputs, ctx) => {
    const inputW = ctx.transform.dstWidth, inputH = ctx.transform.dstHeight;
    const key = `${inputW}x${inputH}`;
    if (!grid || gridFor !== key) {
      grid = ssdAnchors({ inputWidth: inputW, inputHeight: inputH, strides: spec.anchors.strides, anchorsPerCell: spec.anchors.anchorsPerCell });
      gridFor = key;
    }
    const { anchors, groupSizes } = grid;
    const cands: Candidate[] = [];
    let nan = 0;
    let base = 0;
    let group = 0;
    for (let g = 0; g < spec.scoreOutputs.length; g++) {
      const scores = need(outputs, spec.scoreOutputs[g]);
      const boxes = need(outputs, spec.boxOutputs[g]);
      const n = scores.data.length;
      // Each output pair covers whole stride groups, in the order of decoder.anchors.strides (one
      // group per pair in MediaPipe's split exports, all of them in one pair in the single-output
      // ones). Only the total used to be checked, so pairs listed out of order decoded every face
      // against another grid's anchor centres: boxes in the wrong places and faces left unblurred.
      let expected = 0;
      const first = group;
      while (group < groupSizes.length && expected < n) expected += groupSizes[group++];
      if (expected !== n) {
        const want = first < groupSizes.length
          ? `${groupSizes[first]} anchors (stride ${spec.anchors.strides[first]}${first + 1 < groupSizes.length ? ', or whole following stride groups with it' : ''})`
          : 'no anchors (decoder.anchors has no stride group left)';
        throw new ModelError(`Expected BlazeFace outputs ${spec.scoreOutputs[g]} / ${spec.boxOutputs[g]} (pair ${g + 1}) to hold ${want} but ${spec.scoreOutputs[g]} holds ${n}; list decoder.scoreOutputs and boxOutputs in the order of decoder.anchors.strides (group sizes ${JSON.stringify(groupSizes)}) in the model's metadata`);
      }
      // Box outputs are [1, N, coords]: their anchor count must be the score output's.
      const coords = boxes.dims.length >= 2 ? boxes.dims[boxes.dims.length - 1] : (n > 0 ? boxes.data.length / n : 0);
      if (coords < 4 || !Number.isInteger(coords) || boxes.data.length !== n * coords) {
        throw new ModelError(`Expected BlazeFace box output ${spec.boxOutputs[g]} to hold ≥ 4 values for each of the ${n} anchors of ${spec.scoreOutputs[g]} but it holds ${boxes.data.length} (dims ${JSON.stringify(boxes.dims)}); pair each box output with its score output in decoder.scoreOutputs/boxOutputs in the model's metadata`);
      }
      for (let i = 0; i < n; i++) {
        const logit = Math.max(-100, Math.min(100, scores.data[i]));
        // A NaN logit passed `logit < logitThreshold` and came out as a face with a NaN score.
        if (!(logit >= logitThreshold)) {
          if (logit !== logit) nan++;
          continue;
        }
        const a = anchors[base + i];
        const r = boxes.data.subarray(i * coords, (i + 1) * coords);
        // Normalised → model-input pixels.
        const cx = (r[0] / spec.boxScale + a.cx) * inputW;
        const cy = (r[1] / spec.boxScale + a.cy) * inputH;
        const w = (r[2] / spec.boxScale) * inputW;
        const h = (r[3] / spec.boxScale) * inputH;
        const keypoints: Point[] = [];
        for (let k = 4; k + 1 < coords; k += 2) {
          keypoints.push({ x: (r[k] / spec.boxScale + a.cx) * inputW, y: (r[k + 1] / spec.boxScale + a.cy) * inputH });
        }
        cands.push({ classId: 0, score: 1 / (1 + Math.exp(-logit)), box: { x: cx - w / 2, y: cy - h / 2, w, h }, keypoints });
      }
      base += n;
    }
    if (base !== anchors.length) {
      throw new ModelError(`BlazeFace outputs hold ${base} anchors but decoder.anchors describes ${anchors.length}; check strides and anchorsPerCell against the model`);
    }
    checkRun(scoreNames, nan, base, cands);
    const kept = nms(cands, { iouThreshold: spec.iouThreshold, maxDetections: spec.maxDetections, weighted: true });
    return kept.map((c): Detection => ({
      classId: 0,
      label: ctx.labels[0] ?? 'face',
      score: c.score,
      box: boxToSource(ctx.transform, c.box),
      keypoints: c.keypoints?.map((p) => pointToSource(ctx.transform, p)),
    }));
  };
}

function need(outputs: Record<string, OutputTensor>, name: string): OutputTensor {
  const out = outputs[name];
  if (!out) throw new ModelError(`The blazeface decoder expected an output named ${JSON.stringify(name)} but the model gave ${JSON.stringify(Object.keys(outputs))}; fix decoder.scoreOutputs/boxOutputs in the model's metadata`);
  return out;
}
