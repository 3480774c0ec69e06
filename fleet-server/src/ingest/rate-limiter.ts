/** Token buckets per device (or any key; rate per second, burst): `take` says whether a message may pass. */
export class DeviceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {}

  take(deviceId: string): boolean {
    const t = this.now();
    let b = this.buckets.get(deviceId);
    if (!b) {
      // Bounded: buckets that are full again carry no state worth keeping.
      if (this.buckets.size >= 100_000) this.prune(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(deviceId, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Milliseconds until `key` has a token again (0 when it has one now). */
  waitMs(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    const tokens = Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.rate);
    return tokens >= 1 ? 0 : ((1 - tokens) / this.rate) * 1000;
  }

  private prune(t: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(id);
  }
}
