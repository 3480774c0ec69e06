/**
 * A per-key rate limit that keeps the latest message instead of dropping it: for `state` and
 * `reported`, each of which replaces the device's row, only the newest one matters, and dropping the
 * newest (a device's last will, the report that it committed a version) would leave the server with
 * a stale view until the device spoke again. Within the limit a message is delivered at once; past
 * it the newest is held (one per key) and delivered as soon as the bucket has a token again, and each
 * message it replaces is reported through `onSuperseded` (counted as dropped by the caller).
 */
import { DeviceRateLimiter } from './rate-limiter.js';

export interface LatestOnlyOptions<T> {
  /** Messages per second, sustained, per key. */
  rate: number;
  /** Messages at once, per key. */
  burst: number;
  deliver: (key: string, value: T) => void;
  /** A held message was replaced by a newer one before it could be delivered: it is dropped. */
  onSuperseded: (key: string, value: T) => void;
  /** Monotonic clock in ms (tests steer it). */
  now?: () => number;
}

export class LatestOnlyLimiter<T> {
  private readonly buckets: DeviceRateLimiter;
  private readonly held = new Map<string, { value: T; timer: NodeJS.Timeout }>();
  private stopped = false;

  constructor(private readonly opts: LatestOnlyOptions<T>) {
    this.buckets = new DeviceRateLimiter(opts.rate, opts.burst, opts.now);
  }

  /** Messages held now (at most one per key). */
  get heldCount(): number {
    return this.held.size;
  }

  /** Delivers `value` now, or holds it (replacing an older held one) until the key has a token again. */
  offer(key: string, value: T): void {
    if (this.stopped) return;
    const h = this.held.get(key);
    if (h) {
      // Still waiting for a token: the newer message takes the older one's place (and its timer).
      this.opts.onSuperseded(key, h.value);
      h.value = value;
      return;
    }
    if (this.buckets.take(key)) {
      this.opts.deliver(key, value);
      return;
    }
    this.hold(key, value);
  }

  /** Drops what is held and cancels its timers (the broker redelivers retained messages on reconnect). Safe twice. */
  stop(): void {
    this.stopped = true;
    for (const h of this.held.values()) clearTimeout(h.timer);
    this.held.clear();
  }

  private hold(key: string, value: T): void {
    // +1 ms: a timer that fires a fraction early would find the bucket still short of a token.
    const timer = setTimeout(() => this.release(key), Math.ceil(this.buckets.waitMs(key)) + 1);
    timer.unref();
    this.held.set(key, { value, timer });
  }

  private release(key: string): void {
    const h = this.held.get(key);
    if (!h) return;
    this.held.delete(key);
    if (this.buckets.take(key)) this.opts.deliver(key, h.value);
    else this.hold(key, h.value);
  }
}
