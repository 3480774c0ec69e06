/**
 * OTA tables (model registry, desired state, rollouts). They live beside the core migrations
 * (db/database.ts) with their own version counter in `ota_schema_version`, so the OTA module can
 * evolve without renumbering the core list. Append only, like the core list; each step runs inside
 * BEGIN IMMEDIATE so two replicas starting together migrate once.
 */
import type { Db } from '../db/database.js';

const OTA_MIGRATIONS: string[] = [
  `CREATE TABLE model_versions (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     PRIMARY KEY (name, version)
   );
   CREATE TABLE model_artifacts (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     target TEXT NOT NULL,
     precision TEXT NOT NULL,
     path TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     size INTEGER NOT NULL,
     manifest_json TEXT NOT NULL,
     signature TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     PRIMARY KEY (name, version, target)
   );
   CREATE TABLE device_desired (
     device_id TEXT NOT NULL,
     role TEXT NOT NULL,
     entry_json TEXT NOT NULL,
     updated_at_ms INTEGER NOT NULL,
     PRIMARY KEY (device_id, role)
   );
   CREATE TABLE desired_revs (
     device_id TEXT PRIMARY KEY,
     rev INTEGER NOT NULL
   );
   CREATE TABLE rollouts (
     id TEXT PRIMARY KEY,
     idem_key TEXT NOT NULL UNIQUE,
     role TEXT NOT NULL,
     model TEXT NOT NULL,
     version TEXT NOT NULL,
     target_json TEXT NOT NULL,
     waves_json TEXT NOT NULL,
     gate_json TEXT NOT NULL,
     state TEXT NOT NULL,
     wave INTEGER NOT NULL,
     reason TEXT,
     created_at_ms INTEGER NOT NULL,
     updated_at_ms INTEGER NOT NULL
   );
   CREATE TABLE rollout_devices (
     rollout_id TEXT NOT NULL,
     device_id TEXT NOT NULL,
     wave INTEGER NOT NULL,
     previous_json TEXT,
     status TEXT NOT NULL,
     reason TEXT,
     assigned_at_ms INTEGER,
     updated_at_ms INTEGER NOT NULL,
     PRIMARY KEY (rollout_id, device_id)
   );`,
  `CREATE TABLE device_groups (
     device_id TEXT NOT NULL,
     grp TEXT NOT NULL,
     PRIMARY KEY (device_id, grp)
   );`,
  `CREATE TABLE rollout_lease (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     holder TEXT NOT NULL,
     expires_at_ms INTEGER NOT NULL
   );`,
  // When rollouts were last driven (any replica): the gap to the next start is time no server heard
  // the devices, which their wave timeouts do not count.
  `CREATE TABLE rollout_clock (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     last_tick_ms INTEGER NOT NULL
   );`,
  // Each tick's look at the finished rollouts (rollout-store.ts unsettled()) goes from each device's
  // report to the rows it can change, never through the rollouts' history: the rollouts of the
  // version a device runs, its failed rows that know no version it ran before, and the rows still
  // assigned (few: devices installing now).
  `CREATE INDEX rollouts_role_version ON rollouts (role, version);
   CREATE INDEX rollout_devices_assigned ON rollout_devices (rollout_id) WHERE status = 'assigned';
   CREATE INDEX rollout_devices_failed_unknown_previous ON rollout_devices (device_id)
     WHERE status = 'failed' AND json_extract(previous_json, '$.version') IS NULL;`,
  // A rollout aborted or rolled back before a wave left that wave's devices `pending` for good; they
  // end `not-sent` now (rollout-store.ts setState, whose reason this repeats), and so do the rows of
  // rollouts that ended before this step.
  `UPDATE rollout_devices SET status = 'not-sent',
     reason = 'never sent: the rollout was ' || (SELECT CASE r.state WHEN 'aborted' THEN 'aborted' ELSE 'rolled back' END
       FROM rollouts r WHERE r.id = rollout_devices.rollout_id) || ' before its wave'
     WHERE status = 'pending' AND rollout_id IN (SELECT id FROM rollouts WHERE state IN ('aborted', 'rolled-back'));`,
];

export function migrateOta(db: Db): void {
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS ota_schema_version (version INTEGER NOT NULL)');
    const row = db.prepare('SELECT version FROM ota_schema_version').get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    for (let i = current; i < OTA_MIGRATIONS.length; i++) db.exec(OTA_MIGRATIONS[i]);
    if (!row) db.prepare('INSERT INTO ota_schema_version (version) VALUES (?)').run(OTA_MIGRATIONS.length);
    else if (current < OTA_MIGRATIONS.length) db.prepare('UPDATE ota_schema_version SET version = ?').run(OTA_MIGRATIONS.length);
  });
  run.immediate();
}
