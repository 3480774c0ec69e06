/**
 * Per-stage latency for run summaries: the last `capacity` samples per stage (bounded memory), with
 * nearest-rank percentiles. Telemetry keeps its own sliding-window summaries for the fleet.
 */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
}

export class StageLatencies {
  private readonly samples = new Map<string, { values: Float64Array; next: number; count: number; sum: number }>();

  /** `observe` also gets every sample (telemetry's sliding-window summaries). */
  constructor(private readonly capacity = 10_000, private readonly observe?: (stage: string, ms: number) => void) {}

  record(stage: string, ms: number): void {
    this.observe?.(stage, ms);
    let s = this.samples.get(stage);
    if (!s) {
      s = { values: new Float64Array(this.capacity), next: 0, count: 0, sum: 0 };
      this.samples.set(stage, s);
    }
    s.values[s.next] = ms;
    s.next = (s.next + 1) % this.capacity;
    s.count++;
    s.sum += ms;
  }

  summary(): Record<string, LatencySummary> {
    const out: Record<string, LatencySummary> = {};
    for (const [stage, s] of this.samples) {
      const n = Math.min(s.count, this.capacity);
      const sorted = Float64Array.from(s.values.subarray(0, n)).sort();
      const at = (q: number) => round(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
      out[stage] = { count: s.count, p50Ms: at(0.5), p95Ms: at(0.95), p99Ms: at(0.99), meanMs: round(s.sum / s.count) };
    }
    return out;
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
