/**
 * The health window after a swap: the new model's frames against a baseline of the previous
 * model's last frames. It fails on errors, on latency past `maxLatencyRatio` × baseline, on empty
 * output where the previous model found things (output sanity), and on a confidence shift past
 * `maxConfidenceShift` (difference of mean detection scores). Install success alone proves little;
 * these are the signals that show a model that loads but behaves badly.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { DetectSample } from './swappable-detector.js';

export const HealthGateSchema = Type.Object({
  windowMs: Type.Integer({ minimum: 0, default: 10_000 }),
  minFrames: Type.Integer({ minimum: 1, default: 10 }),
  maxErrors: Type.Integer({ minimum: 0, default: 0 }),
  maxLatencyRatio: Type.Number({ exclusiveMinimum: 0, default: 2 }),
  /** Latency differences below this are timer noise on sub-millisecond models, never a failure. */
  latencyFloorMs: Type.Number({ minimum: 0, default: 1 }),
  /** Fraction of frames that must carry detections, relative to the baseline's fraction. */
  minOutputRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
  maxConfidenceShift: Type.Number({ minimum: 0, maximum: 1, default: 0.25 }),
}, { additionalProperties: false });
export type HealthGate = Static<typeof HealthGateSchema>;

export const DEFAULT_HEALTH_GATE: HealthGate = { windowMs: 10_000, minFrames: 10, maxErrors: 0, maxLatencyRatio: 2, latencyFloorMs: 1, minOutputRatio: 0.5, maxConfidenceShift: 0.25 };

interface Summary { frames: number; errors: number; latencyMs: number; outputFraction: number; meanScore: number | undefined }

function summarize(samples: DetectSample[]): Summary {
  const ok = samples.filter((s) => !s.error);
  const lat = ok.map((s) => s.latencyMs).sort((a, b) => a - b);
  const median = lat.length ? lat[Math.floor(lat.length / 2)] : 0;
  const scored = ok.filter((s) => s.meanScore !== undefined);
  return {
    frames: samples.length,
    errors: samples.length - ok.length,
    latencyMs: median,
    outputFraction: ok.length ? ok.filter((s) => s.detections > 0).length / ok.length : 0,
    meanScore: scored.length ? scored.reduce((a, s) => a + (s.meanScore as number), 0) / scored.length : undefined,
  };
}

export interface HealthVerdict {
  ok: boolean;
  reason: string;
  figures: Record<string, number>;
}

/** Keeps the baseline ring (last `baselineFrames` of the running model) and the trial samples. */
export class HealthWindow {
  private baseline: DetectSample[] = [];
  private trial: DetectSample[] = [];
  private trialVersion: string | undefined;

  constructor(private readonly baselineFrames = 50) {}

  add(s: DetectSample): void {
    if (this.trialVersion !== undefined && s.version === this.trialVersion) {
      this.trial.push(s);
      return;
    }
    this.baseline.push(s);
    if (this.baseline.length > this.baselineFrames) this.baseline.shift();
  }

  startTrial(version: string): void {
    this.trialVersion = version;
    this.trial = [];
  }

  endTrial(committed: boolean): void {
    if (committed) this.baseline = this.trial.slice(-this.baselineFrames);
    this.trialVersion = undefined;
    this.trial = [];
  }

  /** Forgets the baseline: the running model changed without a trial (a switch back to a known-good version). */
  resetBaseline(): void {
    this.baseline = [];
  }

  get trialFrames(): number {
    return this.trial.length;
  }

  /** Errors fail at once; the rest is judged on the whole window. */
  earlyFailure(gate: HealthGate): HealthVerdict | undefined {
    const errors = this.trial.filter((s) => s.error);
    if (errors.length > gate.maxErrors) {
      return { ok: false, reason: `the new model failed on ${errors.length} frame(s) (allowed ${gate.maxErrors}): ${errors[0].error}`, figures: { errors: errors.length } };
    }
    return undefined;
  }

  verdict(gate: HealthGate): HealthVerdict {
    const b = summarize(this.baseline);
    const c = summarize(this.trial);
    const figures: Record<string, number> = {
      frames: c.frames, errors: c.errors, latencyMs: round(c.latencyMs), baselineLatencyMs: round(b.latencyMs),
      outputFraction: round(c.outputFraction), baselineOutputFraction: round(b.outputFraction),
      ...(c.meanScore !== undefined ? { meanScore: round(c.meanScore) } : {}),
      ...(b.meanScore !== undefined ? { baselineMeanScore: round(b.meanScore) } : {}),
    };
    const early = this.earlyFailure(gate);
    if (early) return { ...early, figures };
    if (c.frames === 0) return { ok: true, reason: 'no frames during the health window; committed on the self-test alone', figures };
    if (b.frames > 0 && b.latencyMs > 0 && c.latencyMs > gate.maxLatencyRatio * b.latencyMs && c.latencyMs - b.latencyMs > gate.latencyFloorMs) {
      return { ok: false, reason: `latency ${round(c.latencyMs)} ms is ${round(c.latencyMs / b.latencyMs)}× the previous model's ${round(b.latencyMs)} ms (allowed ${gate.maxLatencyRatio}×)`, figures };
    }
    if (b.frames > 0 && b.outputFraction > 0 && c.outputFraction < gate.minOutputRatio * b.outputFraction) {
      return { ok: false, reason: `output sanity: detections on ${round(c.outputFraction * 100)}% of frames vs ${round(b.outputFraction * 100)}% with the previous model`, figures };
    }
    if (b.meanScore !== undefined && c.meanScore !== undefined && Math.abs(c.meanScore - b.meanScore) > gate.maxConfidenceShift) {
      return { ok: false, reason: `confidence shift: mean score ${round(c.meanScore)} vs ${round(b.meanScore)} (allowed ±${gate.maxConfidenceShift})`, figures };
    }
    return { ok: true, reason: 'healthy', figures };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
