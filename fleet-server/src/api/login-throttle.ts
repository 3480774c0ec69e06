/**
 * Failed operator logins per key: after `maxFailures` within `windowMs`, that key gets 429 until the
 * oldest failure leaves the window, so for as long as failures keep coming. The HTTP API keeps two:
 * per client + username (a guesser elsewhere cannot lock the operator out) and per client across
 * usernames, with a higher limit (one address cycling usernames made the first never apply). In
 * memory: a restart forgets (scrypt keeps each guess slow anyway).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface LoginThrottleOptions {
  maxFailures?: number;
  windowMs?: number;
  now?: () => number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  readonly max: number;
  readonly windowMs: number;
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

/** Headers a reverse proxy adds (RFC 7239 Forwarded, the X-Forwarded-* family, nginx's X-Real-IP, Via: RFC 9110 §7.6.3). */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via'] as const;

function isLoopback(ip: string): boolean {
  return ip === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/i.test(ip);
}

/** Who a login counts for, under both limits. */
export interface LoginClient {
  /** The key of the per-client limit (and, with the username, of the per-username one). */
  key: string;
  /** How a refusal names it. */
  shown: string;
  /** Came through a proxy whose client address the server does not take (http.trustProxy): all its clients share its address. */
  viaUntrustedProxy: boolean;
}

/**
 * The client of a login: the request's address (a trusted proxy's client, with http.trustProxy)
 * keyed as addressKey does, except a request made on the server's own host straight to its port
 * (a loopback peer that carries no proxy header: fleetctl, curl, an operator over ssh), which counts
 * apart as "this host". A proxy on the same host connects from loopback too; without trustProxy,
 * every client behind it counted as that loopback address, so one guesser behind the proxy kept the
 * operator on the box out as well, with no way in. A guesser elsewhere cannot make a request look
 * local: it cannot connect from loopback, nor strip the headers the proxy adds.
 */
export function loginClient(r: { ip: string; peer: string | undefined; headers: IncomingHttpHeaders }): LoginClient {
  const proxied = PROXY_HEADERS.some((h) => r.headers[h] !== undefined);
  if (!proxied && r.peer !== undefined && isLoopback(r.peer)) {
    return { key: 'this host', shown: `this host (${r.peer}, not through a proxy)`, viaUntrustedProxy: false };
  }
  return { key: addressKey(r.ip), shown: r.ip, viaUntrustedProxy: proxied && r.ip === r.peer };
}
