/**
 * Failed operator logins per key (the HTTP API uses client address + username): after `maxFailures`
 * within `windowMs`, that key gets 429 until the oldest failure leaves the window. A guesser elsewhere
 * cannot lock the operator out. In memory: a restart forgets (scrypt keeps each guess slow anyway).
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

  private recent(address: string): number[] {
    const cutoff = this.now() - this.windowMs;
    return (this.failures.get(address) ?? []).filter((t) => t > cutoff);
  }
}
