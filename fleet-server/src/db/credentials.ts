/**
 * Secret hashing. Device secrets are stored only as mosquitto's PBKDF2-SHA512 format,
 * `$7$<iterations>$<base64 salt>$<base64 hash>` (mosquitto_passwd(1) and mosquitto-2.0
 * src/password_mosq.c; checked against `mosquitto_passwd -b` output), so the registry can generate
 * mosquitto's password file without ever keeping a plaintext secret. Device secrets are 256-bit
 * random values, so the iteration count guards nothing a brute force could reach; it stays modest
 * to keep CONNECT cheap. Operator passwords (chosen by people) use scrypt.
 */
import { pbkdf2, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);
const PBKDF2_ITERATIONS = 1000;

/**
 * Random base64url text that never begins with '-': secrets and tokens are pasted after options on
 * command lines (`--token T`, `--device-secret S`), and node:util parseArgs or getopt take a value
 * that begins with '-' for another option (1 in 64 base64url strings did).
 */
export function randomToken(bytes: number): string {
  for (;;) {
    const t = randomBytes(bytes).toString('base64url');
    if (!t.startsWith('-')) return t;
  }
}

export function newDeviceSecret(): string {
  return randomToken(32);
}

export function hashDeviceSecret(secret: string, iterations = PBKDF2_ITERATIONS): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(secret, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyDeviceSecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 5 || parts[1] !== '7') return false;
  const iterations = Number(parts[2]);
  const salt = Buffer.from(parts[3], 'base64');
  const expected = Buffer.from(parts[4], 'base64');
  if (!Number.isInteger(iterations) || iterations < 1 || expected.length !== 64) return false;
  const got = await pbkdf2Async(secret, salt, iterations, 64, 'sha512');
  return timingSafeEqual(got, expected);
}

/** scrypt (N=16384, r=8, p=1: Node's defaults, RFC 7914 §2 recommendations for interactive use). */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export async function hashPasswordAsync(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Checks a password against hashPassword's output, on libuv's thread pool: a burst of logins does not stall the event loop that also runs the broker. */
export async function verifyPasswordAsync(password: string, stored: string): Promise<boolean> {
  const [kind, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const got = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length);
  return timingSafeEqual(got, expected);
}

export function constantTimeEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
