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

export function decideGate(report: Pick<EvaluateReport, 'mapDrop' | 'frames'>, opts: { precision?: 'int8' | 'fp16' | 'fp32'; maxMapDrop?: number } = {}): GateDecision {
  const maxMapDrop = opts.maxMapDrop ?? DEFAULT_MAX_MAP_DROP;
  const precision = opts.precision ?? 'int8';
  if (report.frames === 0) return { pass: false, precision, mapDrop: NaN, maxMapDrop, reason: 'no evaluation frames: cannot judge accuracy', offer: ['fp16', 'fp32'] };
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
