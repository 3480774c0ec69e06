/**
 * Each device's desired model versions, persisted and published retained on
 * `ef/v1/dev/{id}/desired` with a revision that only grows. Retained messages of the embedded
 * broker live in memory, so the server republishes every device's desired state when it starts.
 *
 * Each message carries `epoch`, the identity of the rev counter: a random id made once per database
 * (the `desired-epoch` row of db_ids) and kept with the file. A reset database starts its revs at 1
 * again with a new epoch, and an agent compares revs only within one epoch, so it follows the new
 * server at once; it took the low revs for stale retained messages, for 10 minutes, and a rollout
 * created then timed out and was rolled back.
 *
 * A database restored from an older backup keeps its epoch, with revs lower than the ones its devices
 * followed since. That is kept on purpose: nothing in the file tells a restore from a restart, and the
 * agents must still ignore a stale retained message of this counter (a broker restored from its
 * persistence file), which is exactly a lower rev of the same epoch. So devices treat the restored
 * server as before epochs: they keep the model they run (the safe side) until a message is stamped
 * more than 10 minutes after the last one they followed (agent DESIRED_RESET_MIN_GAP_MS; the
 * republish at start usually is, a restore taking longer). To have them follow a restored database at
 * once, delete its `desired-epoch` row while the server is stopped: the next start makes a new one.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import { MAX_PAYLOAD_BYTES, topics, type DesiredPayload } from '../../../agent/src/protocol/index.js';
import type { DesiredModel } from '../../../agent/src/protocol/ota.js';
import { migrateOta } from '../registry/schema.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';

/** Longest `epoch` the desired schema allows (a randomUUID() is 36). */
const EPOCH_MAX_CHARS = 64;

/**
 * Bytes of the desired message carrying these entries. An agent drops a desired message over
 * MAX_PAYLOAD_BYTES.desired (counted as `desired:oversized`, one warning line on the device), so the
 * server must never publish one: the rollout would wait on a device that never heard of it.
 */
export function desiredPayloadBytes(models: Record<string, DesiredModel>): number {
  const payload: DesiredPayload = { v: 1, rev: Number.MAX_SAFE_INTEGER, ts: 8.64e15, epoch: 'e'.repeat(EPOCH_MAX_CHARS), models: models as DesiredPayload['models'] };
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
    this.epoch();
  }

  /** The identity of this database's rev counter (see the top of this file), made when missing. */
  epoch(): string {
    const read = () => (this.db.prepare("SELECT value FROM db_ids WHERE name = 'desired-epoch'").get() as { value: string } | undefined)?.value;
    const known = read();
    if (known !== undefined) return known;
    // Replicas sharing the file may both get here: the first row stays, and both read it.
    this.db.prepare("INSERT INTO db_ids (name, value) VALUES ('desired-epoch', ?) ON CONFLICT (name) DO NOTHING").run(randomUUID());
    return read() as string;
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
    const { rev, epoch } = this.db.transaction(() => {
      if (entry) {
        this.db.prepare('INSERT INTO device_desired (device_id, role, entry_json, updated_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, role) DO UPDATE SET entry_json = excluded.entry_json, updated_at_ms = excluded.updated_at_ms')
          .run(deviceId, role, JSON.stringify(entry), this.now());
      } else {
        this.db.prepare('DELETE FROM device_desired WHERE device_id = ? AND role = ?').run(deviceId, role);
      }
      this.db.prepare('INSERT INTO desired_revs (device_id, rev) VALUES (?, 1) ON CONFLICT (device_id) DO UPDATE SET rev = rev + 1').run(deviceId);
      return { rev: (this.db.prepare('SELECT rev FROM desired_revs WHERE device_id = ?').get(deviceId) as { rev: number }).rev, epoch: this.epoch() };
    })();
    const payload = this.payload(deviceId, rev, epoch);
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
    const epoch = this.epoch();
    for (const r of rows) this.publish(topics.desired(r.device_id), Buffer.from(JSON.stringify(this.payload(r.device_id, r.rev, epoch))));
    return rows.length;
  }

  private payload(deviceId: string, rev: number, epoch: string): DesiredPayload {
    return { v: 1, rev, ts: this.now(), epoch, models: this.get(deviceId) as DesiredPayload['models'] };
  }
}
