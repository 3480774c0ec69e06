/**
 * Persistent outbox for messages that must reach the fleet server (alerts, snapshots): a SQLite file
 * in the agent's state directory. SQLite in WAL mode with `synchronous=FULL` fsyncs every commit
 * (https://www.sqlite.org/pragma.html#pragma_synchronous), so an entry whose `put()` returned
 * survives SIGKILL and power loss. Entries leave in insertion order (`seq`), which keeps per-device
 * order; each has a unique id that the server uses to store it once. The outbox is bounded by entry
 * count and bytes: when full, the OLDEST entry is dropped and counted (the newest alert is the most
 * useful one to an operator), never silently.
 *
 * A damaged file (a flash card that lost power mid-write, a file that is no database) is moved
 * aside as `outbox.sqlite.corrupt-<ms>` and a new outbox is started: refusing to start would stop the
 * cameras and every later alert for the sake of the entries in it.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { EdgeFleetError } from '../util/errors.js';
import { moduleLogger } from '../util/log.js';

/** SQLite's result codes for a file that is not a sound database (https://www.sqlite.org/rescode.html). */
const DAMAGED = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

class DamagedError extends Error {}

export interface OutboxEntry {
  seq: number;
  id: string;
  topic: string;
  payload: Buffer;
  createdAtMs: number;
  attempts: number;
}

export interface OutboxOptions {
  /** SQLite file, e.g. `<stateDir>/outbox.sqlite`. */
  path: string;
  maxEntries?: number;
  maxBytes?: number;
  now?: () => number;
}

export interface OutboxStats {
  pending: number;
  pendingBytes: number;
  /** Entries dropped because the outbox was full, since this process opened it. */
  droppedFull: number;
  acked: number;
}

export class OutboxError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_OUTBOX', message, options);
  }
}

function toBuffer(p: Buffer | string): Buffer {
  return typeof p === 'string' ? Buffer.from(p) : p;
}

type Row = { seq: number; id: string; topic: string; payload: Buffer; created_at_ms: number; attempts: number };

export class Outbox {
  private db: Database.Database | undefined;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private droppedFull = 0;
  private acked = 0;
  private pendingCount = 0;
  private pendingBytes = 0;

  constructor(private readonly opts: OutboxOptions) {
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
  }

  /** Where a damaged file was moved at start, if it was. */
  quarantined: string | undefined;

  /** Opens (creating if needed) the file. Safe to call twice. */
  start(): void {
    if (this.db) return;
    mkdirSync(dirname(this.opts.path), { recursive: true });
    try {
      this.db = this.openFile();
    } catch (err) {
      if (!(err instanceof DamagedError)) {
        throw new OutboxError(`Could not open the outbox at ${this.opts.path}: ${(err as Error).message}. Check that the agent's state directory is writable (systemd ReadWritePaths=).`, { cause: err });
      }
      this.quarantined = `${this.opts.path}.corrupt-${this.now()}`;
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(this.opts.path + suffix)) renameSync(this.opts.path + suffix, this.quarantined + suffix);
      }
      moduleLogger('outbox').error({ moved: this.quarantined, reason: err.message }, 'outbox file damaged: moved aside, starting a new one (its pending alerts are in the moved file)');
      this.db = this.openFile();
    }
    const r = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(payload)), 0) AS b FROM outbox').get() as { n: number; b: number };
    this.pendingCount = r.n;
    this.pendingBytes = r.b;
  }

  /** Opens and checks the file; DamagedError when SQLite finds it is not a sound database. */
  private openFile(): Database.Database {
    let db: Database.Database | undefined;
    try {
      db = new Database(this.opts.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new DamagedError(`quick_check: ${String(check)}`);
      db.exec(`CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
      )`);
      return db;
    } catch (err) {
      db?.close();
      if (err instanceof DamagedError) throw err;
      const code = (err as { code?: string }).code;
      if (code && DAMAGED.has(code)) throw new DamagedError(`${code}: ${(err as Error).message}`);
      throw err;
    }
  }

  stop(): void {
    if (!this.db) return;
    this.db.close();
    this.db = undefined;
  }

  /**
   * Appends a message durably; returns its id (the given one or a new UUID). Putting an id that is
   * already pending is a no-op (idempotent), so a caller may retry.
   */
  put(msg: { topic: string; payload: Buffer | string | ((seq: number) => Buffer | string); id?: string }): string {
    const db = this.open();
    const id = msg.id ?? randomUUID();
    const tx = db.transaction(() => {
      let payload = typeof msg.payload === 'function' ? Buffer.alloc(0) : toBuffer(msg.payload);
      const r = db.prepare('INSERT OR IGNORE INTO outbox (id, topic, payload, created_at_ms) VALUES (?, ?, ?, ?)').run(id, msg.topic, payload, this.now());
      if (r.changes === 0) return;
      if (typeof msg.payload === 'function') {
        // The payload may carry its own outbox position (alerts carry `seq`).
        payload = toBuffer(msg.payload(Number(r.lastInsertRowid)));
        db.prepare('UPDATE outbox SET payload = ? WHERE seq = ?').run(payload, r.lastInsertRowid);
      }
      if (payload.byteLength > this.maxBytes) {
        throw new OutboxError(`Expected a message of at most ${this.maxBytes} bytes for the outbox but received ${payload.byteLength}; shrink the snapshot.`);
      }
      this.pendingCount += 1;
      this.pendingBytes += payload.byteLength;
      while (this.pendingCount > this.maxEntries || this.pendingBytes > this.maxBytes) {
        const oldest = db.prepare('SELECT seq, LENGTH(payload) AS b FROM outbox ORDER BY seq LIMIT 1').get() as { seq: number; b: number } | undefined;
        if (!oldest) break;
        db.prepare('DELETE FROM outbox WHERE seq = ?').run(oldest.seq);
        this.pendingCount -= 1;
        this.pendingBytes -= oldest.b;
        this.droppedFull += 1;
      }
    });
    tx();
    return id;
  }

  /** The oldest pending entries, in order, starting after `afterSeq`. */
  peek(limit: number, afterSeq = 0): OutboxEntry[] {
    const rows = this.open().prepare('SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as Row[];
    return rows.map((r) => ({ seq: r.seq, id: r.id, topic: r.topic, payload: r.payload, createdAtMs: r.created_at_ms, attempts: r.attempts }));
  }

  markAttempt(seq: number): void {
    this.open().prepare('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?').run(seq);
  }

  /** Removes a delivered entry; acking an unknown or already acked id is a no-op. */
  ack(id: string): boolean {
    const db = this.open();
    const row = db.prepare('DELETE FROM outbox WHERE id = ? RETURNING LENGTH(payload) AS b').get(id) as { b: number } | undefined;
    if (!row) return false;
    this.pendingCount -= 1;
    this.pendingBytes -= row.b;
    this.acked += 1;
    return true;
  }

  stats(): OutboxStats {
    return { pending: this.pendingCount, pendingBytes: this.pendingBytes, droppedFull: this.droppedFull, acked: this.acked };
  }

  private open(): Database.Database {
    if (!this.db) throw new OutboxError('The outbox is not open; call start() first.');
    return this.db;
  }
}
