/** Device registry: credentials, liveness, versions, platform, health. */
import type { Db } from './database.js';
import { assertDeviceId, type ReportedPayload, type StatePayload } from '../../../agent/src/protocol/index.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';
import { hashDeviceSecret, newDeviceSecret, verifyDeviceSecret } from './credentials.js';

export interface DeviceRecord {
  id: string;
  createdAtMs: number;
  firstSeenMs: number | null;
  lastSeenMs: number | null;
  online: boolean;
  agentVersion: string | null;
  platform: StatePayload['platform'] | null;
  models: Record<string, string> | null;
  health: StatePayload['health'] | null;
  reported: ReportedPayload | null;
  driftFlagged: boolean;
  lastTelemetryMs: number | null;
}

export class DeviceExistsError extends EdgeFleetError {
  constructor(id: string) {
    super('E_DEVICE_EXISTS', `Device ${id} already exists; pick another id or rotate its secret with --rotate.`);
  }
}

export class DeviceNotFoundError extends EdgeFleetError {
  constructor(id: string) {
    super('E_DEVICE_NOT_FOUND', `No device ${id}; list devices with 'fleetctl device list'.`);
  }
}

type Row = {
  id: string; secret_hash: string; created_at_ms: number; first_seen_ms: number | null; last_seen_ms: number | null; online: number;
  agent_version: string | null; platform_json: string | null; models_json: string | null; health_json: string | null;
  reported_json: string | null; drift_flagged: number; last_telemetry_ms: number | null;
};

function parse<T>(s: string | null): T | null {
  return s === null ? null : (JSON.parse(s) as T);
}

function toRecord(r: Row): DeviceRecord {
  return {
    id: r.id, createdAtMs: r.created_at_ms, firstSeenMs: r.first_seen_ms, lastSeenMs: r.last_seen_ms, online: r.online === 1,
    agentVersion: r.agent_version, platform: parse(r.platform_json), models: parse(r.models_json), health: parse(r.health_json),
    reported: parse(r.reported_json), driftFlagged: r.drift_flagged === 1, lastTelemetryMs: r.last_telemetry_ms,
  };
}

export class DeviceStore {
  private readonly removedListeners = new Set<(id: string) => void>();

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /**
   * Calls `listener` with the id of each device this store removes (the rollout engine drops it from
   * its rollouts, desired state and groups, which live in tables of their own); returns the unsubscribe.
   */
  onRemoved(listener: (id: string) => void): () => void {
    this.removedListeners.add(listener);
    return () => { this.removedListeners.delete(listener); };
  }

  /** Creates a device and returns its secret; the secret is not stored and cannot be shown again. */
  add(id: string, opts: { rotate?: boolean } = {}): { device: DeviceRecord; secret: string } {
    assertDeviceId(id);
    const secret = newDeviceSecret();
    const hash = hashDeviceSecret(secret);
    const exists = this.db.prepare('SELECT 1 FROM devices WHERE id = ?').get(id) !== undefined;
    if (exists && !opts.rotate) throw new DeviceExistsError(id);
    if (exists) this.db.prepare('UPDATE devices SET secret_hash = ? WHERE id = ?').run(hash, id);
    else this.db.prepare('INSERT INTO devices (id, secret_hash, created_at_ms) VALUES (?, ?, ?)').run(id, hash, this.now());
    return { device: this.get(id) as DeviceRecord, secret };
  }

  remove(id: string): boolean {
    const removed = this.db.prepare('DELETE FROM devices WHERE id = ?').run(id).changes > 0;
    if (removed) for (const listener of this.removedListeners) listener(id);
    return removed;
  }

  get(id: string): DeviceRecord | undefined {
    const r = this.db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  list(): DeviceRecord[] {
    return (this.db.prepare('SELECT * FROM devices ORDER BY id').all() as Row[]).map(toRecord);
  }

  /** id → stored secret hash, for mosquitto's password file. */
  credentials(): { id: string; secretHash: string }[] {
    return (this.db.prepare('SELECT id, secret_hash FROM devices ORDER BY id').all() as { id: string; secret_hash: string }[])
      .map((r) => ({ id: r.id, secretHash: r.secret_hash }));
  }

  async verify(id: string, secret: string): Promise<boolean> {
    const r = this.db.prepare('SELECT secret_hash FROM devices WHERE id = ?').get(id) as { secret_hash: string } | undefined;
    if (!r) return false;
    return verifyDeviceSecret(secret, r.secret_hash);
  }

  /**
   * Marks every device offline; for the embedded broker at start, whose retained states and
   * connections did not survive (aedes keeps them in memory): devices say online again on connect.
   */
  markAllOffline(): number {
    return this.db.prepare('UPDATE devices SET online = 0 WHERE online = 1').run().changes;
  }

  /** Marks a message seen from the device (first/last seen). */
  touch(id: string): void {
    const t = this.now();
    this.db.prepare('UPDATE devices SET last_seen_ms = ?, first_seen_ms = COALESCE(first_seen_ms, ?) WHERE id = ?').run(t, t, id);
  }

  applyState(id: string, s: StatePayload): void {
    this.touch(id);
    this.db.prepare(`UPDATE devices SET online = ?,
        agent_version = COALESCE(?, agent_version), platform_json = COALESCE(?, platform_json),
        models_json = COALESCE(?, models_json), health_json = COALESCE(?, health_json) WHERE id = ?`)
      .run(s.online ? 1 : 0, s.agentVersion ?? null, s.platform ? JSON.stringify(s.platform) : null,
        s.models ? JSON.stringify(s.models) : null, s.health ? JSON.stringify(s.health) : null, id);
  }

  applyReported(id: string, r: ReportedPayload): void {
    this.touch(id);
    this.db.prepare('UPDATE devices SET reported_json = ?, models_json = ?, health_json = ? WHERE id = ?')
      .run(JSON.stringify(r), JSON.stringify(r.models), JSON.stringify(r.health), id);
  }

  applyTelemetry(id: string, driftFlagged: boolean, models: Record<string, string>): void {
    const t = this.now();
    this.touch(id);
    this.db.prepare('UPDATE devices SET drift_flagged = ?, last_telemetry_ms = ?, models_json = CASE WHEN ? = \'{}\' THEN models_json ELSE ? END WHERE id = ?')
      .run(driftFlagged ? 1 : 0, t, JSON.stringify(models), JSON.stringify(models), id);
  }
}
