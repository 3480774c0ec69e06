/**
 * Privacy counters: images redacted, regions per image, images withheld (by reason), images sent
 * fully blurred, and privacy-detector latency. Kept as plain numbers (for `--json`, tests and the
 * telemetry payload) and registered in a prom-client registry when one is given.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export type WithholdReason = 'stale' | 'failed' | 'never' | 'redaction-error';

export interface PrivacyMetricsSnapshot {
  imagesRedacted: number;
  regionsTotal: number;
  /** Mean regions per redacted image. */
  regionsPerImage: number;
  imagesWithheld: Record<WithholdReason, number>;
  imagesFullyBlurred: number;
  detectorRuns: number;
  detectorFailures: number;
  detectorLatencyMsP50: number;
  detectorLatencyMsMax: number;
}

const LATENCY_WINDOW = 256;

export class PrivacyMetrics {
  private redacted = 0;
  private regions = 0;
  private readonly withheld: Record<WithholdReason, number> = { stale: 0, failed: 0, never: 0, 'redaction-error': 0 };
  private fullyBlurred = 0;
  private runs = 0;
  private failures = 0;
  /** Ring of the latest latencies (bounded). */
  private readonly latencies: number[] = [];
  private readonly prom?: {
    redacted: Counter<'purpose'>; withheld: Counter<'reason'>; blurred: Counter<string>;
    regionsPerImage: Histogram<string>; latency: Histogram<string>; failures: Counter<string>;
  };

  constructor(registry?: Registry) {
    if (registry) {
      this.prom = {
        redacted: new Counter({ name: 'ef_privacy_images_redacted_total', help: 'Images redacted and released', labelNames: ['purpose'], registers: [registry] }),
        withheld: new Counter({ name: 'ef_privacy_images_withheld_total', help: 'Images not released because privacy coverage was missing', labelNames: ['reason'], registers: [registry] }),
        blurred: new Counter({ name: 'ef_privacy_images_fully_blurred_total', help: 'Images released fully blurred (policy blur-all)', registers: [registry] }),
        regionsPerImage: new Histogram({ name: 'ef_privacy_regions_per_image', help: 'Regions hidden per released image', buckets: [0, 1, 2, 4, 8, 16, 32], registers: [registry] }),
        latency: new Histogram({ name: 'ef_privacy_detector_latency_ms', help: 'Privacy detector latency per frame', buckets: [5, 10, 20, 50, 100, 200, 500, 1000], registers: [registry] }),
        failures: new Counter({ name: 'ef_privacy_detector_failures_total', help: 'Privacy detector runs that failed', registers: [registry] }),
      };
    }
  }

  imageRedacted(purpose: string, regionCount: number): void {
    this.redacted++;
    this.regions += regionCount;
    this.prom?.redacted.inc({ purpose });
    this.prom?.regionsPerImage.observe(regionCount);
  }

  imageWithheld(reason: WithholdReason): void {
    this.withheld[reason]++;
    this.prom?.withheld.inc({ reason });
  }

  imageFullyBlurred(): void {
    this.fullyBlurred++;
    this.prom?.blurred.inc();
  }

  detectorRun(latencyMs: number, ok: boolean): void {
    this.runs++;
    if (!ok) { this.failures++; this.prom?.failures.inc(); }
    this.latencies.push(latencyMs);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    this.prom?.latency.observe(latencyMs);
  }

  snapshot(): PrivacyMetricsSnapshot {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      imagesRedacted: this.redacted,
      regionsTotal: this.regions,
      regionsPerImage: this.redacted ? this.regions / this.redacted : 0,
      imagesWithheld: { ...this.withheld },
      imagesFullyBlurred: this.fullyBlurred,
      detectorRuns: this.runs,
      detectorFailures: this.failures,
      detectorLatencyMsP50: sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0,
      detectorLatencyMsMax: sorted.length ? sorted[sorted.length - 1] : 0,
    };
  }
}
