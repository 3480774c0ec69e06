/** Operators and their API sessions (bearer tokens stored as SHA-256 hashes). */
import { createHash } from 'node:crypto';
import type { Db } from './database.js';
import { hashPassword, hashPasswordAsync, randomToken, verifyPasswordAsync } from './credentials.js';

export class OperatorStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /** A hash no password matches, checked for unknown users (made off the event loop, once). */
  private decoyHash: Promise<string> | undefined;
  private decoy(): Promise<string> {
    this.decoyHash ??= hashPasswordAsync(randomToken(16));
    return this.decoyHash;
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM operators').get() as { n: number }).n;
  }

  setPassword(username: string, password: string): void {
    this.db.prepare(`INSERT INTO operators (username, password_hash, created_at_ms) VALUES (?, ?, ?)
      ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash`).run(username, hashPassword(password), this.now());
  }

  /**
   * Returns a new bearer token, or undefined for a wrong user or password. An unknown user costs the
   * same scrypt as a known one, so the answer's timing does not tell which usernames exist.
   */
  async login(username: string, password: string, ttlMs: number): Promise<{ token: string; expiresAtMs: number } | undefined> {
    const r = this.db.prepare('SELECT password_hash FROM operators WHERE username = ?').get(username) as { password_hash: string } | undefined;
    const ok = await verifyPasswordAsync(password, r?.password_hash ?? await this.decoy());
    if (!r || !ok) return undefined;
    const token = randomToken(32);
    const expiresAtMs = this.now() + ttlMs;
    this.db.prepare('INSERT INTO sessions (token_hash, username, expires_at_ms) VALUES (?, ?, ?)').run(sha256(token), username, expiresAtMs);
    this.db.prepare('DELETE FROM sessions WHERE expires_at_ms < ?').run(this.now());
    return { token, expiresAtMs };
  }

  /** The operator a token belongs to, when valid and unexpired. */
  authenticate(token: string): string | undefined {
    const r = this.db.prepare('SELECT username, expires_at_ms FROM sessions WHERE token_hash = ?').get(sha256(token)) as { username: string; expires_at_ms: number } | undefined;
    if (!r || r.expires_at_ms < this.now()) return undefined;
    return r.username;
  }

  /** Ends every session of `username` (after a password change). Returns how many. */
  revokeSessions(username: string): number {
    return this.db.prepare('DELETE FROM sessions WHERE username = ?').run(username).changes;
  }

  exists(username: string): boolean {
    return this.db.prepare('SELECT 1 FROM operators WHERE username = ?').get(username) !== undefined;
  }

  logout(token: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(sha256(token));
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
