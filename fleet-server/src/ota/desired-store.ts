/**
 * Each device's desired model versions, persisted and published retained on
 * `ef/v1/dev/{id}/desired` with a revision that only grows. Retained messages of the embedded
 * broker live in memory, so the server republishes every device's desired state when it starts.
 */
import type { Db } from '../db/database.js';
import { MAX_PAYLOAD_BYTES, topics, type DesiredPayload } from '../../../agent/src/protocol/index.js';
import type { DesiredModel } from '../../../agent/src/protocol/ota.js';
import { migrateOta } from '../registry/schema.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';

/**
 * Bytes of the desired message carrying these entries. An agent drops a desired message over
 * MAX_PAYLOAD_BYTES.desired (counted as `desired:oversized`, one warning line on the device), so the
 * server must never publish one: the rollout would wait on a device that never heard of it.
 */
export function desiredPayloadBytes(models: Record<string, DesiredModel>): number {
  const payload: DesiredPayload = { v: 1, rev: Number.MAX_SAFE_INTEGER, ts: 8.64e15, models: models as DesiredPayload['models'] };
  return Buffer.byteLength(JSON.stringify(payload));
}

export class DesiredTooLargeError extends EdgeFleetError {
  constructor(message: string) {
    super('E_INPUT', message);
  }
}

export class DesiredStore {
  constructor(
    private readonly db: Db,
    private readonly publish: (topic: string, payload: Buffer) => void,
    private readonly now: () => number = Date.now,
  ) {
    migrateOta(db);
  }

  get(deviceId: string): Record<string, DesiredModel> {
    const rows = this.db.prepare('SELECT role, entry_json FROM device_desired WHERE device_id = ?').all(deviceId) as { role: string; entry_json: string }[];
    return Object.fromEntries(rows.map((r) => [r.role, JSON.parse(r.entry_json) as DesiredModel]));
  }

  /**
   * Why `entry` cannot be set for the device's `role` (its desired message would be over the size an
   * agent accepts, with the device's other roles), or undefined.
   */
  refusal(deviceId: string, role: string, entry: DesiredModel): string | undefined {
    const bytes = desiredPayloadBytes({ ...this.get(deviceId), [role]: entry });
    if (bytes <= MAX_PAYLOAD_BYTES.desired) return undefined;
    const labels = entry.manifest?.labels.length ?? 0;
    return `The desired state of ${deviceId} with ${entry.manifest?.name ?? role}@${entry.version} as its ${role} would be ${bytes} bytes, over the ${MAX_PAYLOAD_BYTES.desired} an agent accepts (it carries the signed manifest of every model the device runs; this one has ${labels} labels); publish the model with fewer or shorter labels.`;
  }

  /**
   * Sets (or with `undefined` clears) one role and publishes the device's whole desired state. Throws
   * DesiredTooLargeError, changing nothing, when the message would be over what an agent accepts.
   */
  set(deviceId: string, role: string, entry: DesiredModel | undefined): DesiredPayload {
    const refused = entry && this.refusal(deviceId, role, entry);
    if (refused) throw new DesiredTooLargeError(refused);
    const rev = this.db.transaction(() => {
      if (entry) {
        this.db.prepare('INSERT INTO device_desired (device_id, role, entry_json, updated_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, role) DO UPDATE SET entry_json = excluded.entry_json, updated_at_ms = excluded.updated_at_ms')
          .run(deviceId, role, JSON.stringify(entry), this.now());
      } else {
        this.db.prepare('DELETE FROM device_desired WHERE device_id = ? AND role = ?').run(deviceId, role);
      }
      this.db.prepare('INSERT INTO desired_revs (device_id, rev) VALUES (?, 1) ON CONFLICT (device_id) DO UPDATE SET rev = rev + 1').run(deviceId);
      return (this.db.prepare('SELECT rev FROM desired_revs WHERE device_id = ?').get(deviceId) as { rev: number }).rev;
    })();
    const payload = this.payload(deviceId, rev);
    this.publish(topics.desired(deviceId), Buffer.from(JSON.stringify(payload)));
    return payload;
  }

  /**
   * Whether name@version is in any role of the device's desired state, with its manifest (what a
   * download needs). An entry without one (a rollback to a version the device holds) matched any
   * model name at that version, so a device could fetch another model that shared the version number.
   */
  holds(deviceId: string, name: string, version: string): boolean {
    return Object.values(this.get(deviceId)).some((e) => e.version === version && e.manifest?.name === name);
  }

  /** Every registered device's desired state (a removed device keeps its rev row, not its desired state). */
  republishAll(): number {
    const rows = this.db.prepare('SELECT r.device_id, r.rev FROM desired_revs r JOIN devices d ON d.id = r.device_id').all() as { device_id: string; rev: number }[];
    for (const r of rows) this.publish(topics.desired(r.device_id), Buffer.from(JSON.stringify(this.payload(r.device_id, r.rev))));
    return rows.length;
  }

  private payload(deviceId: string, rev: number): DesiredPayload {
    return { v: 1, rev, ts: this.now(), models: this.get(deviceId) as DesiredPayload['models'] };
  }
}
