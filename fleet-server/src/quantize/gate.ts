/**
 * The accuracy gate `model publish` runs before an INT8 artifact may ship: the candidate's mAP@0.5
 * drop against FP32 (agreement with the FP32 model's detections, or against labels when given) must
 * not exceed `maxMapDrop` points (default 1.0). A refused INT8 artifact comes with the fallbacks
 * to offer instead (FP16, FP32), which carry no quantization risk.
 */
import { evaluateModels, type EvaluateOptions, type EvaluateReport } from './evaluate.js';

export const DEFAULT_MAX_MAP_DROP = 1.0;

export interface GateDecision {
  pass: boolean;
  precision: 'int8' | 'fp16' | 'fp32';
  mapDrop: number;
  maxMapDrop: number;
  reason: string;
  /** Precisions to publish instead when refused. */
  offer: ('fp16' | 'fp32')[];
}

/**
 * Nothing to compare is no evidence of accuracy: no frames, no reference detections (agreement would
 * be a vacuous 100), or labels with no box on the evaluated frames fail the gate with the reason.
 */
export function decideGate(report: Pick<EvaluateReport, 'mapDrop' | 'frames' | 'referenceDetections' | 'labels'>, opts: { precision?: 'int8' | 'fp16' | 'fp32'; maxMapDrop?: number } = {}): GateDecision {
  const maxMapDrop = opts.maxMapDrop ?? DEFAULT_MAX_MAP_DROP;
  const precision = opts.precision ?? 'int8';
  const cannotJudge = report.frames === 0 ? 'no evaluation frames'
    : report.labels ? (report.labels.boxes === 0 ? `the labels have no box on the ${report.frames} evaluated frames (check their frame indices)` : undefined)
      : report.referenceDetections === 0 ? `the reference model detects nothing on the ${report.frames} evaluated frames (give --data frames where it finds objects)` : undefined;
  if (cannotJudge) return { pass: false, precision, mapDrop: NaN, maxMapDrop, reason: `${cannotJudge}: cannot judge accuracy`, offer: ['fp16', 'fp32'] };
  const pass = report.mapDrop <= maxMapDrop;
  return {
    pass, precision, mapDrop: report.mapDrop, maxMapDrop,
    reason: pass
      ? `mAP@0.5 drop ${report.mapDrop.toFixed(2)} ≤ ${maxMapDrop} points over ${report.frames} frames`
      : `mAP@0.5 drop ${report.mapDrop.toFixed(2)} > ${maxMapDrop} points over ${report.frames} frames; publish the FP16 or FP32 artifact instead, or recalibrate (another --method, more frames, --exclude the sensitive layers)`,
    offer: pass ? [] : ['fp16', 'fp32'],
  };
}

export async function runGate(opts: EvaluateOptions & { maxMapDrop?: number }): Promise<{ decision: GateDecision; report: EvaluateReport }> {
  const report = await evaluateModels(opts);
  return { decision: decideGate(report, { maxMapDrop: opts.maxMapDrop }), report };
}
