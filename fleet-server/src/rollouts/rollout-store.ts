/**
 * Rollouts and their devices in SQLite, so a rollout survives a fleet-server restart: the engine
 * keeps no state of its own between ticks. A rollout's id derives from its content (model, version,
 * role, platform, target, waves, gate), so creating the same rollout twice returns the first.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { Db } from '../db/database.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';
import { canonicalJson } from '../../../agent/src/protocol/manifest.js';
import { compileSchema } from '../../../agent/src/util/schema.js';
import { migrateOta } from '../registry/schema.js';

export class RolloutError extends EdgeFleetError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export const RolloutGateSchema = Type.Object({
  /** Devices of the rollout allowed to fail (refuse, fail, roll back, time out) before it pauses. */
  maxFailures: Type.Integer({ minimum: 0, default: 0 }),
  /**
   * A device that reports no healthy install within this time counts as failed. When absent, the
   * rollout's artifact target decides (waveTimeoutDefaultMs); the record always holds the value used.
   */
  waveTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000 })),
  /** Health window each agent runs after the swap (ms); the agent's default when absent. */
  healthWindowMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
}, { additionalProperties: false });
/** A rollout's gate as stored: waveTimeoutMs resolved (given, or its target's default). */
export type RolloutGate = Static<typeof RolloutGateSchema> & { waveTimeoutMs: number };
export const rolloutGateValidator = compileSchema(RolloutGateSchema);

/**
 * waveTimeoutMs when the gate does not give one, by the artifact target the devices fetch. A
 * TensorRT box builds its engine at first load, which may take up to 30 min (trtexec's limit, the
 * agent's detector.loadTimeoutMs default is 35 min, DEFAULT_LOAD_TIMEOUT_MS in
 * agent/src/config/schema.ts): with 15 min, a Jetson wave failed the gate ("timeout: no healthy
 * report") while its boxes were still building. 45 min is that load limit plus the download and
 * the health window. Other targets load in seconds.
 */
export const WAVE_TIMEOUT_DEFAULT_MS = 15 * 60_000;
export const WAVE_TIMEOUT_TENSORRT_DEFAULT_MS = 45 * 60_000;
export function waveTimeoutDefaultMs(platform: string): number {
  return platform === 'onnx-trt' ? WAVE_TIMEOUT_TENSORRT_DEFAULT_MS : WAVE_TIMEOUT_DEFAULT_MS;
}

export const RolloutSpecSchema = Type.Object({
  model: Type.String({ minLength: 1, maxLength: 64 }),
  version: Type.String({ minLength: 1, maxLength: 64 }),
  role: Type.String({ minLength: 1, maxLength: 64, default: 'detector' }),
  platform: Type.String({ default: 'onnx-cpu', description: 'artifact target the devices run: onnx-cpu, onnx-trt, tflite, coreml' }),
  /** `all`, `group:NAME` or `devices:id1,id2,...`. */
  target: Type.String({ minLength: 3, maxLength: 4096, pattern: '^(all|group:[A-Za-z0-9_.-]+|devices:[A-Za-z0-9_,-]+)$' }),
  /** Cumulative percentages of the target, ascending, the last 100 (e.g. 5,25,100). */
  waves: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 100 }), { minItems: 1, maxItems: 20, default: [5, 25, 100] }),
  gate: Type.Optional(RolloutGateSchema),
}, { additionalProperties: false });
export type RolloutSpec = Static<typeof RolloutSpecSchema>;
export const rolloutSpecValidator = compileSchema(RolloutSpecSchema);

export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted' | 'rolled-back';
/**
 * `not-sent`: still `pending` (its wave not reached) when the rollout was aborted or rolled back, so
 * it was never sent the version and never will be; final, like succeeded, failed and rolled-back.
 */
export type RolloutDeviceStatus = 'pending' | 'assigned' | 'succeeded' | 'failed' | 'rolled-back' | 'not-sent';

export interface RolloutRecord {
  id: string;
  role: string;
  model: string;
  version: string;
  platform: string;
  target: string;
  waves: number[];
  gate: RolloutGate;
  state: RolloutState;
  /** Index of the wave being rolled out (0-based). */
  wave: number;
  reason: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface RolloutDeviceRecord {
  deviceId: string;
  wave: number;
  status: RolloutDeviceStatus;
  reason: string | null;
  previousVersion: string | null;
  assignedAtMs: number | null;
}

interface DeviceRow {
  device_id: string; wave: number; status: string; reason: string | null; previous_json: string | null; assigned_at_ms: number | null;
}

interface RolloutRow {
  id: string; role: string; model: string; version: string; target_json: string; waves_json: string; gate_json: string;
  state: string; wave: number; reason: string | null; created_at_ms: number; updated_at_ms: number;
}

/** A rollout's row with one of its devices' (whose wave, status and reason are renamed: the rollout has its own). */
type UnsettledRow = RolloutRow & Pick<DeviceRow, 'device_id' | 'previous_json' | 'assigned_at_ms'> & { device_wave: number; device_status: string; device_reason: string | null };

export class RolloutStore {
  constructor(readonly db: Db, private readonly now: () => number = Date.now) {
    migrateOta(db);
  }

  /** Content-derived id; `attempt` > 0 for the same spec created again after an abort or rollback. */
  static idOf(spec: Required<Omit<RolloutSpec, 'gate'>> & { gate: RolloutGate }, attempt = 0): string {
    return `ro-${createHash('sha256').update(canonicalJson(spec) + (attempt ? `#${attempt}` : '')).digest('hex').slice(0, 12)}`;
  }

  /**
   * Inserts the rollout and its devices (wave assignment frozen at creation). The same spec again returns
   * the existing rollout (a retried request must not double it) unless that one was aborted or rolled
   * back: then the operator means to run it again, and a new attempt starts.
   */
  create(spec: Required<Omit<RolloutSpec, 'gate'>> & { gate: RolloutGate }, deviceIds: string[]): { rollout: RolloutRecord; created: boolean } {
    return this.db.transaction(() => {
      let attempt = 0;
      let id = RolloutStore.idOf(spec);
      for (let existing = this.get(id); existing; existing = this.get(id)) {
        if (existing.state !== 'aborted' && existing.state !== 'rolled-back') return { rollout: existing, created: false };
        id = RolloutStore.idOf(spec, ++attempt);
      }
      const active = this.list().find((r) => r.role === spec.role && (r.state === 'running' || r.state === 'paused'));
      if (active) throw new RolloutError('E_ROLLOUT_ACTIVE', `Rollout ${active.id} (${active.model}@${active.version}) is still ${active.state} for role ${spec.role}; abort or finish it first.`);
      const at = this.now();
      this.db.prepare('INSERT INTO rollouts (id, idem_key, role, model, version, target_json, waves_json, gate_json, state, wave, reason, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)')
        .run(id, id, spec.role, spec.model, spec.version, JSON.stringify({ target: spec.target, platform: spec.platform }), JSON.stringify(spec.waves), JSON.stringify(spec.gate), 'running', at, at);
      const ids = [...deviceIds].sort();
      const ins = this.db.prepare('INSERT INTO rollout_devices (rollout_id, device_id, wave, previous_json, status, reason, assigned_at_ms, updated_at_ms) VALUES (?, ?, ?, NULL, ?, NULL, NULL, ?)');
      let from = 0;
      spec.waves.forEach((pct, w) => {
        const upto = w === spec.waves.length - 1 ? ids.length : Math.max(from + (from === 0 ? 1 : 0), Math.ceil((ids.length * pct) / 100));
        for (let i = from; i < Math.min(upto, ids.length); i++) ins.run(id, ids[i], w, 'pending', at);
        from = Math.max(from, Math.min(upto, ids.length));
      });
      return { rollout: this.get(id)!, created: true };
    }).immediate();
  }

  get(id: string): RolloutRecord | undefined {
    const r = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
    return r ? toRecord(r) : undefined;
  }

  /** In creation order; with `deviceId`, only the rollouts that include that device; with `state`, only those in it. */
  list(opts: { deviceId?: string; state?: RolloutState } = {}): RolloutRecord[] {
    const where: string[] = [];
    const args: string[] = [];
    if (opts.deviceId !== undefined) {
      where.push('EXISTS (SELECT 1 FROM rollout_devices d WHERE d.rollout_id = r.id AND d.device_id = ?)');
      args.push(opts.deviceId);
    }
    if (opts.state !== undefined) {
      where.push('r.state = ?');
      args.push(opts.state);
    }
    // In creation order (rowid breaks ties within a millisecond).
    const sql = `SELECT * FROM rollouts r ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at_ms, rowid`;
    return (this.db.prepare(sql).all(...args) as RolloutRow[]).map(toRecord);
  }

  /** The rollout's devices, by wave and id; with `status`, only those in it. */
  devices(id: string, status?: RolloutDeviceStatus): RolloutDeviceRecord[] {
    const rows = (status === undefined
      ? this.db.prepare('SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY wave, device_id').all(id)
      : this.db.prepare('SELECT * FROM rollout_devices WHERE rollout_id = ? AND status = ? ORDER BY wave, device_id').all(id, status)) as DeviceRow[];
    return rows.map(toDeviceRecord);
  }

  /**
   * The rows of finished rollouts that a device's report can still change, with their rollout, in
   * creation order, in one query that costs the same however many rollouts finished (it starts from
   * the devices' reports and the rows still assigned, by the indexes made for it in registry/schema.ts):
   *   - assigned in an aborted rollout (in its health window at the abort);
   *   - failed in a completed, paused or aborted rollout whose version the device now reports for
   *     the role (it may have committed it since) while its desired state still names that model and
   *     version (not a rollback, nor another model that has the same version number), or that knows
   *     no version the device ran before while the device now reports one (what a rollback must send
   *     it back to).
   * A failed device still on the version before (most of them) is not returned; nor is any row of
   * a rolled-back rollout, which sent every device back.
   */
  unsettled(): { rollout: RolloutRecord; device: RolloutDeviceRecord }[] {
    const cols = 'r.*, r.rowid AS rollout_seq, d.device_id, d.wave AS device_wave, d.status AS device_status, d.reason AS device_reason, d.previous_json, d.assigned_at_ms';
    const finished = "r.state IN ('completed', 'paused', 'aborted')";
    // A report SQLite's JSON parser refuses (an extra property nested past its 1000 levels; the
    // reported schema bounds its size, not its depth) made json_each throw "malformed JSON", and the
    // whole query with it for every device: such a report settles nothing here.
    const models = "json_each(CASE WHEN json_valid(dv.reported_json) THEN dv.reported_json END, '$.models')";
    // CROSS JOIN keeps SQLite to this order (from the reports), whatever it guesses of the tables' sizes.
    const rows = this.db.prepare(`
      SELECT ${cols} FROM rollout_devices d CROSS JOIN rollouts r ON r.id = d.rollout_id
        WHERE d.status = 'assigned' AND r.state = 'aborted'
      UNION ALL
      SELECT ${cols} FROM devices dv CROSS JOIN ${models} m
        CROSS JOIN rollouts r ON r.role = m.key AND r.version = m.value
        CROSS JOIN rollout_devices d ON d.rollout_id = r.id AND d.device_id = dv.id
        WHERE d.status = 'failed' AND ${finished} AND EXISTS (SELECT 1 FROM device_desired dd
          WHERE dd.device_id = dv.id AND dd.role = r.role AND json_extract(dd.entry_json, '$.version') = r.version
            AND (json_extract(dd.entry_json, '$.rollout') = r.id OR json_extract(dd.entry_json, '$.manifest.name') = r.model))
      UNION ALL
      SELECT ${cols} FROM devices dv CROSS JOIN ${models} m
        CROSS JOIN rollout_devices d ON d.device_id = dv.id
        CROSS JOIN rollouts r ON r.id = d.rollout_id AND r.role = m.key
        WHERE d.status = 'failed' AND json_extract(d.previous_json, '$.version') IS NULL AND m.value <> r.version AND ${finished}
      ORDER BY created_at_ms, rollout_seq, device_wave, device_id`).all() as UnsettledRow[];
    return rows.map((row) => ({
      rollout: toRecord(row),
      device: toDeviceRecord({ ...row, wave: row.device_wave, status: row.device_status, reason: row.device_reason }),
    }));
  }

  /**
   * Ending a rollout (aborted, rolled back) ends its devices still pending with it, as `not-sent`:
   * left pending, they read as waiting for a wave that will never come.
   */
  setState(id: string, state: RolloutState, reason: string | null, wave?: number): void {
    const at = this.now();
    this.db.transaction(() => {
      this.db.prepare('UPDATE rollouts SET state = ?, reason = ?, wave = COALESCE(?, wave), updated_at_ms = ? WHERE id = ?').run(state, reason, wave ?? null, at, id);
      if (state === 'aborted' || state === 'rolled-back') {
        this.db.prepare("UPDATE rollout_devices SET status = 'not-sent', reason = ?, updated_at_ms = ? WHERE rollout_id = ? AND status = 'pending'")
          .run(notSentReason(state), at, id);
      }
    }).immediate();
  }

  setDevice(id: string, deviceId: string, patch: { status: RolloutDeviceStatus; reason?: string | null; previousVersion?: string | null; assigned?: boolean }): void {
    const at = this.now();
    this.db.prepare(`UPDATE rollout_devices SET status = ?, reason = ?, updated_at_ms = ?,
      previous_json = CASE WHEN ? THEN ? ELSE previous_json END,
      assigned_at_ms = CASE WHEN ? THEN ? ELSE assigned_at_ms END
      WHERE rollout_id = ? AND device_id = ?`)
      .run(patch.status, patch.reason ?? null, at, patch.previousVersion !== undefined ? 1 : 0, JSON.stringify({ version: patch.previousVersion ?? null }), patch.assigned ? 1 : 0, at, id, deviceId);
  }

  /** Takes a device out of a rollout (it was removed from the fleet): it no longer counts for the waves or the gate. */
  removeDevice(id: string, deviceId: string): void {
    this.db.prepare('DELETE FROM rollout_devices WHERE rollout_id = ? AND device_id = ?').run(id, deviceId);
  }

  /**
   * One engine drives rollouts at a time when several replicas share the database: the holder
   * renews a lease each tick; another replica takes over once it expired.
   */
  acquireLease(holder: string, ttlMs: number): boolean {
    const now = this.now();
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT holder, expires_at_ms FROM rollout_lease WHERE id = 1').get() as { holder: string; expires_at_ms: number } | undefined;
      if (row && row.holder !== holder && row.expires_at_ms > now) return false;
      this.db.prepare('INSERT INTO rollout_lease (id, holder, expires_at_ms) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms')
        .run(holder, now + ttlMs);
      return true;
    }).immediate();
  }

  /** When rollouts were last driven, by any engine (undefined before the first tick). */
  lastTick(): number | undefined {
    return (this.db.prepare('SELECT last_tick_ms FROM rollout_clock WHERE id = 1').get() as { last_tick_ms: number } | undefined)?.last_tick_ms;
  }

  recordTick(ms: number): void {
    this.db.prepare('INSERT INTO rollout_clock (id, last_tick_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_tick_ms = excluded.last_tick_ms').run(ms);
  }

  /**
   * Moves the assignment time of every device still installing `byMs` later: assigned in a running
   * rollout, or in an aborted one (in its health window at the abort, its outcome still awaited).
   */
  shiftAssignments(byMs: number): number {
    return this.db.prepare(`UPDATE rollout_devices SET assigned_at_ms = assigned_at_ms + ?
      WHERE status = 'assigned' AND assigned_at_ms IS NOT NULL AND rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'aborted'))`).run(byMs).changes;
  }

  /**
   * Moves the assignment time of the rollout's devices still installing `byMs` later: a paused
   * rollout judges none of them, so the time it was paused is given back at resume or abort.
   */
  shiftRolloutAssignments(id: string, byMs: number): number {
    return this.db.prepare(`UPDATE rollout_devices SET assigned_at_ms = assigned_at_ms + ?
      WHERE rollout_id = ? AND status = 'assigned' AND assigned_at_ms IS NOT NULL`).run(byMs, id).changes;
  }

  releaseLease(holder: string): void {
    this.db.prepare('DELETE FROM rollout_lease WHERE id = 1 AND holder = ?').run(holder);
  }

  groupMembers(group: string): string[] {
    return (this.db.prepare('SELECT device_id FROM device_groups WHERE grp = ? ORDER BY device_id').all(group) as { device_id: string }[]).map((r) => r.device_id);
  }

  /** Groups (sites) a device belongs to (the dashboard shows and filters by them). */
  groupsOf(deviceId: string): string[] {
    return (this.db.prepare('SELECT grp FROM device_groups WHERE device_id = ? ORDER BY grp').all(deviceId) as { grp: string }[]).map((r) => r.grp);
  }

  /** Replaces a device's groups; a name given twice is stored once (the key is device + group). */
  setGroups(deviceId: string, groups: string[]): string[] {
    const unique = [...new Set(groups)];
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM device_groups WHERE device_id = ?').run(deviceId);
      for (const g of unique) this.db.prepare('INSERT INTO device_groups (device_id, grp) VALUES (?, ?)').run(deviceId, g);
    })();
    return unique;
  }
}

/** Why a device still pending when its rollout ended was never sent the version. */
export function notSentReason(state: 'aborted' | 'rolled-back'): string {
  return `never sent: the rollout was ${state === 'aborted' ? 'aborted' : 'rolled back'} before its wave`;
}

function toRecord(r: RolloutRow): RolloutRecord {
  const t = JSON.parse(r.target_json) as { target: string; platform: string };
  return {
    id: r.id, role: r.role, model: r.model, version: r.version, platform: t.platform, target: t.target,
    waves: JSON.parse(r.waves_json) as number[], gate: JSON.parse(r.gate_json) as RolloutGate,
    state: r.state as RolloutState, wave: r.wave, reason: r.reason, createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms,
  };
}

function toDeviceRecord(r: DeviceRow): RolloutDeviceRecord {
  return {
    deviceId: r.device_id, wave: r.wave, status: r.status as RolloutDeviceStatus, reason: r.reason,
    previousVersion: r.previous_json ? (JSON.parse(r.previous_json) as { version: string | null }).version : null, assignedAtMs: r.assigned_at_ms,
  };
}
