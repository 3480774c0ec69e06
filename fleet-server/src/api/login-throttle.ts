/**
 * Failed operator logins per key: after `maxFailures` within `windowMs`, that key gets 429 until the
 * oldest failure leaves the window. The HTTP API keeps two: per client address + username (a guesser
 * elsewhere cannot lock the operator out) and per client address across usernames, with a higher
 * limit (one address cycling usernames made the first never apply). In memory: a restart forgets
 * (scrypt keeps each guess slow anyway).
 */
export interface LoginThrottleOptions {
  maxFailures?: number;
  windowMs?: number;
  now?: () => number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(o: LoginThrottleOptions = {}) {
    this.max = o.maxFailures ?? 10;
    this.windowMs = o.windowMs ?? 5 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  retryAfterMs(address: string): number {
    const recent = this.recent(address);
    return recent.length >= this.max ? recent[0] + this.windowMs - this.now() : 0;
  }

  failed(address: string): void {
    const recent = this.recent(address);
    recent.push(this.now());
    this.failures.set(address, recent);
    // Bounded memory under a spray of addresses: forget addresses whose failures have all expired.
    if (this.failures.size > 10_000) for (const a of [...this.failures.keys()]) if (this.recent(a).length === 0) this.failures.delete(a);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }

  /** Takes back the newest failure of `address` (a try counted before its check that then succeeded). */
  forgive(address: string): void {
    const recent = this.recent(address);
    recent.pop();
    if (recent.length) this.failures.set(address, recent);
    else this.failures.delete(address);
  }

  private recent(address: string): number[] {
    const cutoff = this.now() - this.windowMs;
    return (this.failures.get(address) ?? []).filter((t) => t > cutoff);
  }
}

/**
 * The key of a client address for the per-address limit: IPv4 as it is (also when IPv4-mapped,
 * ::ffff:a.b.c.d), IPv6 by its /64, the block one host or home line is given (RFC 6177), so that a
 * host cannot leave the limit by cycling the addresses of its own prefix.
 */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.toLowerCase().split('%')[0].split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
