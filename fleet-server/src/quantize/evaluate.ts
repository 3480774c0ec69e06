/**
 * Accuracy of a candidate model (INT8/FP16) against its reference (FP32) on the same frames: both
 * run on identical preprocessed inputs (ONNX in onnxruntime-node, a TFLite candidate in LiteRT.js, as
 * the agent runs it), both decoded by the agent's decoders (agent/src/decode, chosen by each model's
 * metadata: an exported TFLite file decodes its head maps where its source decoded its own tail). Reports
 * - agreement: mAP@0.5 of the candidate's detections taking the reference's detections as truth
 *   (the candidate is decoded at half the metadata's score threshold so a box whose score slips just
 *   under the threshold still counts as found, ranked low, as in a normal mAP evaluation);
 * - agreement at the operating threshold: both models decoded at their metadata's score threshold,
 *   as a device runs them, the candidate's detections matched one-to-one to the reference's at
 *   IoU 0.5 (recall, precision, F1). mAP integrates over the ranking, so it cannot see a candidate
 *   whose scores all sink (a heatmap ×0.8 keeps every box's rank and mAP, but a device at the
 *   threshold loses a quarter of its detections); this figure does;
 * - with labels: mAP@0.5 of each model against them, and the drop;
 * - per-class AP deltas and per-output SNR (10·log10 Σref² / Σ(ref−cand)²) in dB.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { loadModelMetadata, metadataPathFor, type ModelMetadata } from '../../../agent/src/model/metadata.js';
import { decoderOutputNames } from '../../../agent/src/decode/spec.js';
import { createDecoder } from '../../../agent/src/decode/index.js';
import { compileSchema } from '../../../agent/src/util/schema.js';
import { InputError, ModelError, ModelOutputError } from '../../../agent/src/util/errors.js';
import type { Detection } from '../../../agent/src/types.js';
import { modelInputs, type FrameSelection } from './frames.js';
import { addToSnr, snrDb } from './snr.js';
import { openGateModel, type GateModel } from './gate-model.js';
import { averagePrecision, bootstrapMeanAp, candidateDecoderSpec, f1Score, matchAtThreshold, meanAp, pairedBootstrapMeanApDifference, type ClassAp, type FrameDetections } from './ap.js';

/** Labels file: boxes in source pixels per frame index (the video frame number or the sorted image index). */
export const LabelsFile = Type.Object({
  frames: Type.Array(Type.Object({
    index: Type.Integer({ minimum: 0 }),
    boxes: Type.Array(Type.Object({
      classId: Type.Integer({ minimum: 0 }),
      x: Type.Number(), y: Type.Number(), w: Type.Number({ minimum: 0 }), h: Type.Number({ minimum: 0 }),
    }, { additionalProperties: false })),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type LabelsFile = Static<typeof LabelsFile>;
const labelsValidator = compileSchema(LabelsFile);

export interface EvaluateOptions {
  reference: string;
  candidate: string;
  /** The candidate's metadata when it is not in a file beside it (`model publish --meta`). */
  candidateMeta?: ModelMetadata;
  data: FrameSelection;
  labelsPath?: string;
  intraOpThreads?: number;
  /** Another build of the reference, run on the same frames: the report's `comparison`. */
  compare?: string;
}

export interface ClassDelta {
  classId: number;
  label: string;
  /** Reference detections of this class (the truth for agreement). */
  referenceCount: number;
  candidateCount: number;
  /** AP of the candidate vs the reference's detections; with labels, AP(candidate) − AP(reference) vs labels. */
  agreementAp: number;
  labelApDelta?: number;
}

export interface EvaluateReport {
  reference: string;
  candidate: string;
  frames: number;
  /** mAP@0.5 (0..100) of the candidate against the reference's detections. */
  agreementMap: number;
  /**
   * 95% interval of agreementMap over the evaluated frames (percentile bootstrap, ap.ts bootstrapMeanAp):
   * how far the figure would move on other frames like these. The gate reads the point value.
   */
  agreementMapCi95: [number, number];
  /** 100 − agreementMap, or the labelled mAP drop when labels were given: what the gate checks. */
  mapDrop: number;
  /** Detections of the reference model over all frames: the truth agreement is measured against. */
  referenceDetections: number;
  /**
   * Agreement at the operating threshold: both models decoded at their metadata's score threshold
   * (null for a decoder without one), the candidate's detections matched one-to-one to the
   * reference's at IoU 0.5. recall, precision and f1 are 0..100; f1Drop = 100 − f1 is what the gate checks.
   */
  atThreshold: { scoreThreshold: number | null; referenceDetections: number; candidateDetections: number; matched: number; recall: number; precision: number; f1: number; f1Drop: number };
  /** `boxes`: labelled boxes on the evaluated frames. */
  labels?: { referenceMap: number; candidateMap: number; drop: number; boxes: number };
  perClass: ClassDelta[];
  /** dB per output tensor; Infinity when identical. */
  outputSnrDb: Record<string, number>;
  /**
   * Frames on which the candidate's output was broken (NaN scores or boxes: E_MODEL_OUTPUT), scored as
   * frames where it found nothing; `first` says which frame and how. Absent when none was.
   */
  candidateBroken?: { frames: number; first: string };
  /**
   * With `compare`: that build's agreement mAP on the same frames, and its difference from the
   * candidate's (compare − candidate, points) with a paired 95% interval (ap.ts
   * pairedBootstrapMeanApDifference). An interval that holds 0 means these frames do not tell the two apart.
   * `broken`: frames on which that build's output was broken (scored as finding nothing, as the candidate's are).
   */
  comparison?: { candidate: string; agreementMap: number; difference: number; differenceCi95: [number, number]; broken?: { frames: number; first: string } };
}

async function readLabels(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError(`Cannot read the labels file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`The labels file ${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Throws unless `cand` reads the reference's inputs, has the outputs its decoder reads, and preprocesses alike. */
function assertBuildOf(ref: GateModel, meta: ModelMetadata, refPath: string, cand: GateModel, candMeta: ModelMetadata, candPath: string, role = 'candidate'): void {
  const absent = [
    ...ref.inputNames.filter((n) => !cand.inputNames.includes(n)).map((n) => `input ${n}`),
    ...decoderOutputNames(candMeta.decoder).filter((n) => !cand.outputNames.includes(n)).map((n) => `output ${n}`),
  ];
  if (absent.length) throw new ModelError(`The ${role} ${candPath} is not a build of the reference ${refPath}: it lacks ${absent.slice(0, 4).join(', ')}; compare a model with its own INT8/FP16 build`);
  if (!isDeepStrictEqual(candMeta.preprocess, meta.preprocess)) {
    throw new ModelError(`The ${role} ${candPath} preprocesses frames otherwise than the reference ${refPath} (see ${metadataPathFor(candPath)}); compare a model with its own INT8/FP16 build`);
  }
}

export async function evaluateModels(opts: EvaluateOptions): Promise<EvaluateReport> {
  const meta: ModelMetadata = await loadModelMetadata(opts.reference);
  // The candidate's own metadata where it has one (an export may decode other outputs than its source).
  const candMeta = opts.candidateMeta ?? (existsSync(metadataPathFor(opts.candidate)) ? await loadModelMetadata(opts.candidate) : meta);
  const labels = opts.labelsPath ? labelsValidator.parse(await readLabels(opts.labelsPath), `labels file ${opts.labelsPath}`) : undefined;
  const compareMeta = opts.compare && existsSync(metadataPathFor(opts.compare)) ? await loadModelMetadata(opts.compare) : meta;
  const threads = opts.intraOpThreads ?? 1;
  const opened: GateModel[] = [];
  let ref: GateModel, cand: GateModel, other: GateModel | undefined;
  try {
    opened.push(ref = await openGateModel(opts.reference, threads));
    opened.push(cand = await openGateModel(opts.candidate, threads));
    if (opts.compare) opened.push(other = await openGateModel(opts.compare, threads));
  } catch (err) {
    await Promise.all(opened.map((m) => m.release()));
    throw err;
  }
  const labelByFrame = new Map(labels?.frames.map((f) => [f.index, f.boxes]) ?? []);
  const decodeRef = createDecoder(meta.decoder);
  const candSpec = candidateDecoderSpec(meta.decoder);
  const decodeCand = createDecoder(candidateDecoderSpec(candMeta.decoder));
  // The candidate as a device runs it: at its own metadata's threshold.
  const decodeCandAt = createDecoder(candMeta.decoder);
  const inputName = meta.input ?? ref.inputNames[0];
  const decodeOther = other ? createDecoder(candidateDecoderSpec(compareMeta.decoder)) : undefined;
  const agreement: FrameDetections[] = [], atThreshold: FrameDetections[] = [], refVsLabels: FrameDetections[] = [], candVsLabels: FrameDetections[] = [], otherAgreement: FrameDetections[] = [];
  const refLow = createDecoder(candSpec);
  const snr = new Map<string, { sig: number; err: number }>();
  let frames = 0, referenceDetections = 0, labelBoxes = 0;
  let broken: EvaluateReport['candidateBroken'], otherBroken: EvaluateReport['candidateBroken'];
  const countBroken = (was: EvaluateReport['candidateBroken'], index: number, err: Error) => ({ frames: (was?.frames ?? 0) + 1, first: was?.first ?? `frame ${index}: ${err.message}` });
  try {
    assertBuildOf(ref, meta, opts.reference, cand, candMeta, opts.candidate);
    if (other) assertBuildOf(ref, meta, opts.reference, other, compareMeta, opts.compare!, '--compare model');
    for await (const input of modelInputs(opts.data, meta.preprocess)) {
      const r = await ref.run(inputName, input);
      const c = await cand.run(inputName, input);
      // SNR on the outputs both have (an export may end before its source's decoding tail).
      for (const name of Object.keys(r).filter((n) => c[n])) {
        const a = r[name].data, b = c[name].data;
        if (b.length !== a.length) throw new ModelError(`Candidate output ${name} has ${b.length} values but the reference has ${a.length}; the models do not match`);
        const acc = snr.get(name) ?? { sig: 0, err: 0 };
        addToSnr(acc, a, b);
        snr.set(name, acc);
      }
      const ctx = { transform: input.transform, labels: meta.labels, outputNames: ref.outputNames };
      const refDets = decodeRef(r, ctx);
      // A candidate whose run is broken (NaN: an FP16 overflow) finds nothing on the frame, as a device
      // running it would report, and the gate refuses it with the reason (a broken reference throws).
      let candDets: Detection[] = [], candAt: Detection[] = [];
      try {
        candDets = decodeCand(c, { ...ctx, outputNames: cand.outputNames });
        candAt = decodeCandAt(c, { ...ctx, outputNames: cand.outputNames });
      } catch (err) {
        if (!(err instanceof ModelOutputError)) throw err;
        broken = countBroken(broken, input.index, err);
      }
      agreement.push({ truth: refDets, predicted: candDets });
      if (other && decodeOther) {
        // Scored as finding nothing on a frame whose output is broken, as the candidate is.
        const o = await other.run(inputName, input);
        let otherDets: Detection[] = [];
        try {
          otherDets = decodeOther(o, { ...ctx, outputNames: other.outputNames });
        } catch (err) {
          if (!(err instanceof ModelOutputError)) throw err;
          otherBroken = countBroken(otherBroken, input.index, err);
        }
        otherAgreement.push({ truth: refDets, predicted: otherDets });
      }
      atThreshold.push({ truth: refDets, predicted: candAt });
      referenceDetections += refDets.length;
      if (labels) {
        const truth: Detection[] = (labelByFrame.get(input.index) ?? []).map((b) => ({ classId: b.classId, label: meta.labels[b.classId] ?? `class${b.classId}`, score: 1, box: { x: b.x, y: b.y, w: b.w, h: b.h } }));
        labelBoxes += truth.length;
        refVsLabels.push({ truth, predicted: refLow(r, ctx) });
        candVsLabels.push({ truth, predicted: candDets });
      }
      frames++;
    }
  } finally {
    await Promise.all(opened.map((m) => m.release()));
  }
  const agreeAps = averagePrecision(agreement);
  const agreementMap = 100 * meanAp(agreeAps);
  const perClass: ClassDelta[] = agreeAps.map((a: ClassAp) => ({ classId: a.classId, label: a.label, referenceCount: a.truths, candidateCount: a.predictions, agreementAp: 100 * a.ap }));
  const m = matchAtThreshold(atThreshold), f1 = 100 * f1Score(m);
  const report: EvaluateReport = {
    reference: opts.reference, candidate: opts.candidate, frames, referenceDetections, agreementMap,
    agreementMapCi95: bootstrapMeanAp(agreement).map((v) => 100 * v) as [number, number], mapDrop: 100 - agreementMap,
    atThreshold: {
      scoreThreshold: 'scoreThreshold' in meta.decoder ? meta.decoder.scoreThreshold : null, referenceDetections: m.truths, candidateDetections: m.predictions, matched: m.matched,
      recall: m.truths ? (100 * m.matched) / m.truths : 100, precision: m.predictions ? (100 * m.matched) / m.predictions : 100, f1, f1Drop: 100 - f1,
    },
    perClass,
    outputSnrDb: Object.fromEntries([...snr].map(([k, v]) => [k, snrDb(v)])),
    ...(broken ? { candidateBroken: broken } : {}),
  };
  if (opts.compare) {
    const otherMap = 100 * meanAp(averagePrecision(otherAgreement));
    report.comparison = {
      candidate: opts.compare, agreementMap: otherMap, difference: otherMap - agreementMap,
      differenceCi95: pairedBootstrapMeanApDifference(agreement, otherAgreement).map((v) => 100 * v) as [number, number],
      ...(otherBroken ? { broken: otherBroken } : {}),
    };
  }
  if (labels) {
    const ra = averagePrecision(refVsLabels), ca = averagePrecision(candVsLabels);
    const referenceMap = 100 * meanAp(ra), candidateMap = 100 * meanAp(ca);
    report.labels = { referenceMap, candidateMap, drop: referenceMap - candidateMap, boxes: labelBoxes };
    report.mapDrop = referenceMap - candidateMap;
    for (const d of perClass) {
      const rAp = ra.find((x) => x.classId === d.classId)?.ap, cAp = ca.find((x) => x.classId === d.classId)?.ap;
      if (rAp !== undefined && cAp !== undefined) d.labelApDelta = 100 * (cAp - rAp);
    }
  }
  return report;
}
