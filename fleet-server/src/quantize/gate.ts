/**
 * The accuracy gate `model publish` runs before an INT8 artifact may ship: the candidate's mAP@0.5
 * drop against FP32 (agreement with the FP32 model's detections, or against labels when given) must
 * not exceed `maxMapDrop` points (default 1.0), and the F1 of its detections at the metadata's score
 * threshold against FP32's (what a device reports) must not drop more than `maxF1Drop` points
 * (default 3). A refused INT8 artifact comes with the fallbacks to offer instead (FP16, FP32), which
 * carry no quantization risk.
 */
import { evaluateModels, type EvaluateOptions, type EvaluateReport } from './evaluate.js';

export const DEFAULT_MAX_MAP_DROP = 1.0;
/**
 * F1 at the threshold counts a box whose score moves across the threshold by a hair as a
 * disagreement, so good INT8 builds lose more here than in mAP: measured on the sample models, the
 * CenterNet at --target-snr 30 lost 1.7 (24 gate frames of vtest.avi; 1.9 on 96) and the BlazeFace
 * entropy build 2.3 (one face of 22), while a confidence slump that keeps every box's rank (and mAP)
 * lost 3.7 with scores ×0.95 and 14.1 with ×0.8 (a quarter of the detections gone).
 */
export const DEFAULT_MAX_F1_DROP = 3.0;
/** Frames the gate evaluates unless told (`model evaluate` and `model publish --frames`). */
export const DEFAULT_GATE_FRAMES = 24;

export interface GateDecision {
  pass: boolean;
  precision: 'int8' | 'fp16' | 'fp32';
  mapDrop: number;
  maxMapDrop: number;
  /** 100 − F1 (0..100) of the candidate's detections against the reference's, both at the metadata's score threshold. */
  f1Drop: number;
  maxF1Drop: number;
  reason: string;
  /** Precisions to publish instead when refused. */
  offer: ('fp16' | 'fp32')[];
}

/**
 * Nothing to compare is no evidence of accuracy: no frames, no reference detections (agreement would
 * be a vacuous 100), or labels with no box on the evaluated frames fail the gate with the reason.
 */
export function decideGate(report: Pick<EvaluateReport, 'mapDrop' | 'frames' | 'referenceDetections' | 'labels' | 'atThreshold' | 'candidateBroken'>, opts: { precision?: 'int8' | 'fp16' | 'fp32'; maxMapDrop?: number; maxF1Drop?: number } = {}): GateDecision {
  const maxMapDrop = opts.maxMapDrop ?? DEFAULT_MAX_MAP_DROP;
  const maxF1Drop = opts.maxF1Drop ?? DEFAULT_MAX_F1_DROP;
  const precision = opts.precision ?? 'int8';
  // What to publish when refused: FP32, and for an INT8 build also its FP16 variant, which the gate has not judged.
  const offer: ('fp16' | 'fp32')[] = precision === 'int8' ? ['fp16', 'fp32'] : ['fp32'];
  const instead = precision === 'int8' ? 'publish the FP32 artifact instead (or the FP16 one once it passes this gate: model publish --precision fp16 with --reference and --data)' : 'publish the FP32 artifact instead';
  const cannotJudge = report.frames === 0 ? 'no evaluation frames'
    : report.labels ? (report.labels.boxes === 0 ? `the labels have no box on the ${report.frames} evaluated frames (check their frame indices)` : undefined)
      : report.referenceDetections === 0 ? `the reference model detects nothing on the ${report.frames} evaluated frames (give --data frames where it finds objects)` : undefined;
  const t = report.atThreshold;
  // A broken run on any frame fails whatever else is said (the agent refuses or counts such runs),
  // before "cannot judge": a reference that finds nothing would have hidden it.
  if (report.candidateBroken) {
    return {
      pass: false, precision, mapDrop: report.mapDrop, maxMapDrop, f1Drop: t.f1Drop, maxF1Drop, offer,
      reason: `the candidate's output is broken on ${report.candidateBroken.frames} of ${report.frames} frames (${report.candidateBroken.first}); ${instead}${precision === 'int8' ? ', or recalibrate' : ''}`,
    };
  }
  if (cannotJudge) return { pass: false, precision, mapDrop: NaN, maxMapDrop, f1Drop: NaN, maxF1Drop, reason: `${cannotJudge}: cannot judge accuracy`, offer };
  const mapOk = report.mapDrop <= maxMapDrop, f1Ok = t.f1Drop <= maxF1Drop;
  const pass = mapOk && f1Ok;
  const at = `at score ≥ ${t.scoreThreshold ?? 'the decoder\'s threshold'}`;
  const mapText = `mAP@0.5 drop ${report.mapDrop.toFixed(2)} ${mapOk ? '≤' : '>'} ${maxMapDrop} points`;
  const f1Text = `F1 drop ${at} ${t.f1Drop.toFixed(2)} ${f1Ok ? '≤' : '>'} ${maxF1Drop} points` +
    (f1Ok ? '' : ` (the candidate reports ${t.candidateDetections} detections where the reference reports ${t.referenceDetections}, ${t.matched} of them alike)`);
  return {
    pass, precision, mapDrop: report.mapDrop, maxMapDrop, f1Drop: t.f1Drop, maxF1Drop,
    reason: pass
      ? `${mapText} and ${f1Text} over ${report.frames} frames`
      : `${[mapOk ? '' : mapText, f1Ok ? '' : f1Text].filter(Boolean).join(' and ')} over ${report.frames} frames; ${instead}${precision === 'int8' ? ', or recalibrate (another --method, more frames, --exclude the sensitive layers)' : ''}`,
    offer: pass ? [] : offer,
  };
}

export async function runGate(opts: EvaluateOptions & { maxMapDrop?: number; maxF1Drop?: number; precision?: 'int8' | 'fp16' }): Promise<{ decision: GateDecision; report: EvaluateReport }> {
  const report = await evaluateModels(opts);
  return { decision: decideGate(report, { maxMapDrop: opts.maxMapDrop, maxF1Drop: opts.maxF1Drop, precision: opts.precision }), report };
}
