/**
 * Fleet events for live views (the dashboard's server-sent events). Ingest publishes what it has
 * stored, the rollout engine which rollouts it changed; subscribers get small summaries, never raw
 * device payloads, so a browser sees only fields the server has validated. Delivery is in-process
 * and synchronous; a slow subscriber is the SSE stream's business (it bounds its own queue and
 * counts drops).
 */
import type { TopicKind } from '../../../agent/src/protocol/index.js';

export type FleetEvent =
  | { type: 'device'; deviceId: string }
  | { type: 'telemetry'; deviceId: string; tsMs: number; detectFps: number; p95Ms: number | null; driftFlagged: boolean }
  | { type: 'alert'; deviceId: string; id: string; tsMs: number; rule: string; class: string; score: number; camera: string }
  /** The rollout's state or a device's status in it changed (the rollout engine, once per tick or operator action). */
  | { type: 'rollout'; rolloutId: string };

export type FleetEventListener = (e: FleetEvent) => void;

export class FleetEventBus {
  private readonly listeners = new Set<FleetEventListener>();
  /** Listener exceptions, counted (one bad listener must not stop ingest). */
  listenerErrors = 0;

  subscribe(fn: FleetEventListener): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  publish(e: FleetEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        this.listenerErrors += 1;
      }
    }
  }

  /** Maps one stored ingest message to its event (telemetry, alert, state/reported). */
  fromIngest(kind: TopicKind, deviceId: string, value: unknown): void {
    if (kind === 'state' || kind === 'reported') {
      this.publish({ type: 'device', deviceId });
    } else if (kind === 'telemetry') {
      const t = value as { ts: number; detectFps: number; stages: Record<string, { p95Ms: number }>; drift: { flagged: boolean } };
      this.publish({ type: 'telemetry', deviceId, tsMs: t.ts, detectFps: t.detectFps, p95Ms: pipelineP95Ms(t.stages), driftFlagged: t.drift.flagged });
    } else if (kind === 'alert') {
      const a = value as { id: string; ts: number; rule: string; class: string; score: number; camera: string };
      this.publish({ type: 'alert', deviceId, id: a.id, tsMs: a.ts, rule: a.rule, class: a.class, score: a.score, camera: a.camera });
    }
  }
}

/**
 * The p95 latency shown per device: the `total` stage when the agent reports one, else the largest
 * stage p95 (a lower bound on the whole pipeline's p95; percentiles do not add).
 */
export function pipelineP95Ms(stages: Record<string, { p95Ms: number }>): number | null {
  if (stages.total) return stages.total.p95Ms;
  const v = Object.values(stages).map((s) => s.p95Ms);
  return v.length ? Math.max(...v) : null;
}
