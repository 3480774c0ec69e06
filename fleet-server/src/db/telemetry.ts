/** Telemetry series per device, pruned by age (retention). */
import type { Db } from './database.js';
import type { TelemetryPayload } from '../../../agent/src/protocol/index.js';

export interface TelemetryPoint {
  deviceId: string;
  tsMs: number;
  receivedAtMs: number;
  payload: TelemetryPayload;
}

export class TelemetryStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  insert(deviceId: string, t: TelemetryPayload): void {
    this.db.prepare('INSERT INTO telemetry (device_id, ts_ms, received_at_ms, payload_json) VALUES (?, ?, ?, ?)')
      .run(deviceId, t.ts, this.now(), JSON.stringify(t));
  }

  /** Newest first, received after `sinceMs`. */
  series(deviceId: string, opts: { sinceMs?: number; limit?: number } = {}): TelemetryPoint[] {
    const rows = this.db.prepare('SELECT * FROM telemetry WHERE device_id = ? AND received_at_ms >= ? ORDER BY received_at_ms DESC, rowid DESC LIMIT ?')
      .all(deviceId, opts.sinceMs ?? 0, Math.min(opts.limit ?? 100, 1000)) as { device_id: string; ts_ms: number; received_at_ms: number; payload_json: string }[];
    return rows.map((r) => ({ deviceId: r.device_id, tsMs: r.ts_ms, receivedAtMs: r.received_at_ms, payload: JSON.parse(r.payload_json) as TelemetryPayload }));
  }

  /** Deletes points older than the retention; returns how many. */
  prune(retentionMs: number): number {
    return this.db.prepare('DELETE FROM telemetry WHERE received_at_ms < ?').run(this.now() - retentionMs).changes;
  }

  count(deviceId?: string): number {
    const r = (deviceId
      ? this.db.prepare('SELECT COUNT(*) AS n FROM telemetry WHERE device_id = ?').get(deviceId)
      : this.db.prepare('SELECT COUNT(*) AS n FROM telemetry').get()) as { n: number };
    return r.n;
  }
}
