/**
 * Alerts, stored once per (device, alert id) however often they are delivered (QoS 1 is
 * at-least-once, MQTT 5 §4.3.2, and the agent's outbox resends after a reconnect). Snapshots are
 * kept as the redacted JPEG bytes next to the alert.
 */
import type { Db } from './database.js';
import type { AlertPayload } from '../../../agent/src/protocol/index.js';

export interface AlertRecord {
  seq: number;
  deviceId: string;
  id: string;
  tsMs: number;
  receivedAtMs: number;
  alert: Omit<AlertPayload, 'snapshot'>;
  /** Present when a snapshot was stored: fetch it from /api/alerts/:device/:id/snapshot. */
  snapshot: { contentType: string; bytes: number } | { ref: string } | null;
}

type Row = { seq: number; device_id: string; id: string; ts_ms: number; received_at_ms: number; payload_json: string; snapshot_type: string | null; snap_len: number | null };

export interface AlertPageFilter {
  deviceId?: string;
  /** Any of these devices (a site or group); an empty list matches nothing. */
  deviceIds?: string[];
  rule?: string;
  class?: string;
  /** Received at or after this time (ms since the epoch): arrival order is `seq` order, so it bounds the scan. */
  sinceReceivedMs?: number;
  beforeSeq?: number;
  limit?: number;
}

export class AlertStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /** Returns true when stored, false when this (device, id) was already there (a duplicate). */
  insert(deviceId: string, a: AlertPayload): boolean {
    const { snapshot, ...rest } = a;
    let bytes: Buffer | null = null;
    let type: string | null = null;
    const meta: Record<string, unknown> = { ...rest };
    if (snapshot && 'dataBase64' in snapshot) {
      bytes = Buffer.from(snapshot.dataBase64, 'base64');
      type = snapshot.contentType;
      meta.snapshotSize = { width: snapshot.width, height: snapshot.height };
    } else if (snapshot) {
      meta.snapshotRef = snapshot.ref;
    }
    const r = this.db.prepare(`INSERT OR IGNORE INTO alerts (device_id, id, dev_seq, ts_ms, received_at_ms, camera, rule, class, score, payload_json, snapshot, snapshot_type)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(deviceId, a.id, a.seq ?? null, a.ts, this.now(), a.camera, a.rule, a.class, a.score, JSON.stringify(meta), bytes, type);
    return r.changes > 0;
  }

  /**
   * Deletes alerts older than `retentionMs` and drops the snapshot bytes of those older than
   * `snapshotRetentionMs` (the alert itself stays); returns how many of each. In batches of 500 and
   * at most `maxRows` of each per call: the first prune of a server upgraded with weeks of snapshots
   * must not hold the event loop (and the broker on it) for one long statement; the next calls go on.
   */
  prune(retentionMs: number, snapshotRetentionMs: number, maxRows = 5000): { alerts: number; snapshots: number } {
    const now = this.now();
    const batched = (sql: string, cutoff: number): number => {
      const stmt = this.db.prepare(sql);
      let n = 0;
      for (;;) {
        const changed = stmt.run(cutoff).changes;
        n += changed;
        if (changed < 500 || n >= maxRows) return n;
      }
    };
    return {
      alerts: batched('DELETE FROM alerts WHERE seq IN (SELECT seq FROM alerts WHERE received_at_ms < ? LIMIT 500)', now - retentionMs),
      snapshots: batched(`UPDATE alerts SET snapshot = NULL, snapshot_type = NULL
        WHERE seq IN (SELECT seq FROM alerts WHERE snapshot IS NOT NULL AND received_at_ms < ? LIMIT 500)`, now - snapshotRetentionMs),
    };
  }

  /** Newest first; pass the last seq of a page as `beforeSeq` for the next page. */
  /**
   * Newest first, `limit` at a time (`nextBeforeSeq` continues). Filters: devices, rule, class (each on
   * an index, migration 4) and arrival time. The dashboard filtered only the newest 200 alerts of the whole fleet in the
   * browser, so a quiet device's alerts, behind a busy one's, never showed.
   */
  page(opts: AlertPageFilter = {}): { items: AlertRecord[]; nextBeforeSeq: number | null } {
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 500));
    const where = ['seq < ?'];
    const args: (string | number)[] = [opts.beforeSeq ?? Number.MAX_SAFE_INTEGER];
    const devices = opts.deviceIds ?? (opts.deviceId ? [opts.deviceId] : undefined);
    if (devices) {
      if (devices.length === 0) return { items: [], nextBeforeSeq: null };
      where.push(`device_id IN (${devices.map(() => '?').join(', ')})`);
      args.push(...devices);
    }
    if (opts.rule) { where.push("json_extract(payload_json, '$.rule') = ?"); args.push(opts.rule); }
    if (opts.class) { where.push("json_extract(payload_json, '$.class') = ?"); args.push(opts.class); }
    if (opts.sinceReceivedMs !== undefined) {
      const first = this.db.prepare('SELECT seq FROM alerts WHERE received_at_ms >= ? ORDER BY received_at_ms LIMIT 1').get(opts.sinceReceivedMs) as { seq: number } | undefined;
      if (!first) return { items: [], nextBeforeSeq: null };
      where.push('seq >= ?');
      args.push(first.seq);
    }
    const rows = this.db.prepare(`SELECT seq, device_id, id, ts_ms, received_at_ms, payload_json, snapshot_type, LENGTH(snapshot) AS snap_len FROM alerts
      WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`)
      .all(...args, limit + 1) as Row[];
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map(toRecord);
    return { items, nextBeforeSeq: more ? items[items.length - 1].seq : null };
  }

  get(deviceId: string, id: string): AlertRecord | undefined {
    const r = this.db.prepare('SELECT seq, device_id, id, ts_ms, received_at_ms, payload_json, snapshot_type, LENGTH(snapshot) AS snap_len FROM alerts WHERE device_id = ? AND id = ?')
      .get(deviceId, id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  snapshot(deviceId: string, id: string): { contentType: string; data: Buffer } | undefined {
    const r = this.db.prepare('SELECT snapshot, snapshot_type FROM alerts WHERE device_id = ? AND id = ?').get(deviceId, id) as { snapshot: Buffer | null; snapshot_type: string | null } | undefined;
    if (!r?.snapshot || !r.snapshot_type) return undefined;
    return { contentType: r.snapshot_type, data: r.snapshot };
  }

  count(deviceId?: string): number {
    const r = (deviceId
      ? this.db.prepare('SELECT COUNT(*) AS n FROM alerts WHERE device_id = ?').get(deviceId)
      : this.db.prepare('SELECT COUNT(*) AS n FROM alerts').get()) as { n: number };
    return r.n;
  }

  /**
   * Alerts of each device received in the last `windowMs`. Counted on the (device, seq) index from
   * the first alert received in the window (seq follows arrival): with 1M alerts over a week, 20
   * devices took 6 ms where counting all of each device's alerts took 80 ms, and the dashboard asks
   * on every burst of device events.
   */
  recentCounts(deviceIds: string[], windowMs: number): Map<string, number> {
    const first = this.db.prepare('SELECT seq FROM alerts WHERE received_at_ms >= ? ORDER BY received_at_ms LIMIT 1').get(this.now() - windowMs) as { seq: number } | undefined;
    const count = this.db.prepare('SELECT COUNT(*) AS n FROM alerts WHERE device_id = ? AND seq >= ?');
    return new Map(deviceIds.map((id) => [id, first ? (count.get(id, first.seq) as { n: number }).n : 0]));
  }

  /** Alert ids of one device in the device's order (outbox seq), arrival order as the tie-break. */
  idsInDeviceOrder(deviceId: string): string[] {
    return (this.db.prepare('SELECT id FROM alerts WHERE device_id = ? ORDER BY dev_seq, seq').all(deviceId) as { id: string }[]).map((r) => r.id);
  }

  /** Alert ids of one device in arrival order. */
  idsInArrivalOrder(deviceId: string): string[] {
    return (this.db.prepare('SELECT id FROM alerts WHERE device_id = ? ORDER BY seq').all(deviceId) as { id: string }[]).map((r) => r.id);
  }
}

function toRecord(r: Row): AlertRecord {
  const meta = JSON.parse(r.payload_json) as Omit<AlertPayload, 'snapshot'> & { snapshotRef?: string };
  const { snapshotRef, ...alert } = meta;
  return {
    seq: r.seq, deviceId: r.device_id, id: r.id, tsMs: r.ts_ms, receivedAtMs: r.received_at_ms, alert,
    snapshot: r.snapshot_type ? { contentType: r.snapshot_type, bytes: r.snap_len ?? 0 } : snapshotRef ? { ref: snapshotRef } : null,
  };
}
