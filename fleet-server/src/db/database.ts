/**
 * The fleet server's SQLite database (better-sqlite3): opening, pragmas and schema migrations.
 * WAL lets several replicas on one host share the file (readers never block the writer;
 * https://www.sqlite.org/wal.html); busy_timeout makes a second writer wait instead of failing.
 * Migrations are numbered and tracked in `PRAGMA user_version`; each runs inside BEGIN IMMEDIATE so
 * two processes starting together migrate once.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { giveTo, ownerForRoot } from './file-owner.js';

export type Db = Database.Database;

/** Append only: never edit a released migration; add the next one. OTA tables come later. */
const MIGRATIONS: string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     secret_hash TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     first_seen_ms INTEGER,
     last_seen_ms INTEGER,
     online INTEGER NOT NULL DEFAULT 0,
     agent_version TEXT,
     platform_json TEXT,
     models_json TEXT,
     health_json TEXT,
     reported_json TEXT,
     drift_flagged INTEGER NOT NULL DEFAULT 0,
     last_telemetry_ms INTEGER
   );
   CREATE TABLE telemetry (
     device_id TEXT NOT NULL,
     ts_ms INTEGER NOT NULL,
     received_at_ms INTEGER NOT NULL,
     payload_json TEXT NOT NULL
   );
   CREATE INDEX telemetry_device_ts ON telemetry (device_id, received_at_ms);
   CREATE INDEX telemetry_received ON telemetry (received_at_ms);
   CREATE TABLE alerts (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     device_id TEXT NOT NULL,
     id TEXT NOT NULL,
     dev_seq INTEGER,
     ts_ms INTEGER NOT NULL,
     received_at_ms INTEGER NOT NULL,
     camera TEXT NOT NULL,
     rule TEXT NOT NULL,
     class TEXT NOT NULL,
     score REAL NOT NULL,
     payload_json TEXT NOT NULL,
     snapshot BLOB,
     snapshot_type TEXT,
     UNIQUE (device_id, id)
   );
   CREATE INDEX alerts_device_seq ON alerts (device_id, seq);
   CREATE TABLE operators (
     username TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL,
     expires_at_ms INTEGER NOT NULL
   );`,
  // Alert retention prunes by arrival time; the partial index finds the snapshots still to drop.
  `CREATE INDEX alerts_received ON alerts (received_at_ms);
   CREATE INDEX alerts_snapshot_received ON alerts (received_at_ms) WHERE snapshot IS NOT NULL;`,
  // The alert list's rule and class filters, newest first (db/alerts.ts page(): the same expressions).
  // Without them a filter that matches few alerts read every row's JSON: 0.7–1.1 s over 1M alerts,
  // on the event loop that also runs the broker and ingest.
  `CREATE INDEX alerts_rule_seq ON alerts (json_extract(payload_json, '$.rule'), seq);
   CREATE INDEX alerts_class_seq ON alerts (json_extract(payload_json, '$.class'), seq);`,
  // Ids made once per database file and kept with it (ota/desired-store.ts: `desired-epoch`, the
  // identity of its rev counter): a new or reset database has none, so it makes new ones.
  `CREATE TABLE db_ids (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );`,
];

export function openDatabase(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  // Run as root (`sudo fleetctl device add --data-dir /var/lib/edge-fleet`, or `model publish
  // --create` before the server's first start), a database fleetctl created was root's, and so were
  // its -wal and -shm files: the server, running as its own user, could not open it ("unable to open
  // database file", or read-only). SQLite gives the -wal and -shm it makes as root the database
  // file's owner (os_unix.c, robustFchown), but not a new database file, nor files an earlier run
  // left root-owned. All three are given the database's owner (its directory's for a new one).
  const owner = path !== ':memory:' ? ownerForRoot(existsSync(path) ? path : dirname(path)) : undefined;
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  giveTo(owner, path, `${path}-wal`, `${path}-shm`);
  return db;
}

export function migrate(db: Db): void {
  const run = db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let i = current; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]);
    if (current < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  run.immediate();
}

export function schemaVersion(): number {
  return MIGRATIONS.length;
}
