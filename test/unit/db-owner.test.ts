/**
 * `fleetctl` run as root on the server's data dir (sudo fleetctl device add ... --data-dir
 * /var/lib/edge-fleet) left a database it created, with its -wal and -shm files, owned by root, and
 * the server, running as its own user, could not open it; -wal and -shm an earlier run left root's
 * stayed root's. Now they take the owner of the database, or of its directory for a new one. Runs
 * only as root (it must chown); the service user is uid 65534 (nobody), and a child process running
 * as that user proves it can write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { withTempDir } from '../helpers/temp-dir.js';

const SERVICE_UID = 65534;
const SERVICE_GID = 65534;
const skip = process.getuid?.() !== 0 ? 'needs root (it checks that files made as root are given to the service user)' : false;
const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');

/** Opens the database as the service user and writes to it, as the server would; its exit status and error. */
function writeAsService(path: string): { status: number | null; stderr: string } {
  const script = `const D = require(${JSON.stringify(sqlite)}); const d = new D(${JSON.stringify(path)}); d.pragma('journal_mode = WAL'); d.prepare("INSERT OR REPLACE INTO db_ids (name, value) VALUES ('svc', 'x')").run(); d.close();`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: SERVICE_UID, gid: SERVICE_GID, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: r.stderr };
}

const owners = (path: string) => [path, `${path}-wal`, `${path}-shm`].filter(existsSync).map((f) => `${f.slice(path.length) || 'db'} ${statSync(f).uid}:${statSync(f).gid}`);

test('as root, the database files made while fleetctl has it open belong to the service user, who can still write it', { skip }, async () => {
  await withTempDir('ef-db-owner-', (dir) => {
    chownSync(dir, SERVICE_UID, SERVICE_GID); // the server's data dir
    const path = join(dir, 'fleet.db');
    // A new database (devices added before the server's first start): the directory's owner.
    let db = openDatabase(path);
    assert.deepEqual(owners(path), [`db ${SERVICE_UID}:${SERVICE_GID}`, `-wal ${SERVICE_UID}:${SERVICE_GID}`, `-shm ${SERVICE_UID}:${SERVICE_GID}`]);
    // The server starts while fleetctl still has it open.
    const whileOpen = writeAsService(path);
    assert.equal(whileOpen.status, 0, whileOpen.stderr);
    db.close();

    // The server's database, opened by root again: -wal and -shm are made anew, by root.
    db = openDatabase(path);
    try {
      assert.deepEqual(owners(path), [`db ${SERVICE_UID}:${SERVICE_GID}`, `-wal ${SERVICE_UID}:${SERVICE_GID}`, `-shm ${SERVICE_UID}:${SERVICE_GID}`]);
      const again = writeAsService(path);
      assert.equal(again.status, 0, again.stderr);
    } finally {
      db.close();
    }
  });
});

test('as root, -wal and -shm left root-owned by an earlier run are given back to the database owner', { skip }, async () => {
  await withTempDir('ef-db-owner-', (dir) => {
    chownSync(dir, SERVICE_UID, SERVICE_GID);
    const path = join(dir, 'fleet.db');
    const first = openDatabase(path);
    // An earlier fleetctl (before this fix) made them root's; this one opens while they exist.
    for (const f of [`${path}-wal`, `${path}-shm`]) chownSync(f, 0, 0);
    const second = openDatabase(path);
    try {
      assert.deepEqual(owners(path), [`db ${SERVICE_UID}:${SERVICE_GID}`, `-wal ${SERVICE_UID}:${SERVICE_GID}`, `-shm ${SERVICE_UID}:${SERVICE_GID}`]);
    } finally {
      second.close();
      first.close();
    }
  });
});
