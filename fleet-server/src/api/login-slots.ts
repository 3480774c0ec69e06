/**
 * A bound on operator password checks running at once, with a short wait line; past both, a login is
 * refused at once (the API answers 503) instead of queued.
 *
 * Each check is one scrypt (16 MiB, ~40 ms) on libuv's thread pool, the same pool that checks device
 * secrets on MQTT CONNECT (PBKDF2, db/credentials.ts). The pool runs its work in arrival order on
 * UV_THREADPOOL_SIZE threads (4 by default; libuv docs, "Thread pool work scheduling"): unbounded,
 * 800 parallel logins took a device CONNECT from 56 ms to over 20 s, past the agent's 10 s connect
 * timeout. With at most `concurrent` checks in the pool, the other threads stay free for devices.
 */
export interface LoginSlotsOptions {
  /** Checks running at once (default: half the thread pool, at least 1). */
  concurrent?: number;
  /** Logins that may wait for a slot (default 8). */
  waiting?: number;
}

/** Half of libuv's thread pool (UV_THREADPOOL_SIZE, default 4), at least 1. */
export function defaultLoginConcurrency(env: NodeJS.ProcessEnv = process.env): number {
  const pool = Number(env.UV_THREADPOOL_SIZE);
  return Math.max(1, Math.floor((Number.isInteger(pool) && pool > 0 ? pool : 4) / 2));
}

export class LoginSlots {
  readonly concurrent: number;
  readonly waitingMax: number;
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(o: LoginSlotsOptions = {}) {
    this.concurrent = o.concurrent ?? defaultLoginConcurrency();
    this.waitingMax = o.waiting ?? 8;
  }

  /**
   * Runs `check` in a slot, waiting for one if needed; undefined (and `check` not called) when every
   * slot is taken and the wait line is full.
   */
  run<T>(check: () => Promise<T>): Promise<T> | undefined {
    if (this.running >= this.concurrent && this.queue.length >= this.waitingMax) return undefined;
    const slot = this.running < this.concurrent
      ? (this.running += 1, Promise.resolve())
      : new Promise<void>((resolve) => this.queue.push(resolve));
    return slot.then(check).finally(() => this.release());
  }

  /** Checks running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.queue.length };
  }

  private release(): void {
    const next = this.queue.shift();
    // The slot passes straight to the next in line (running stays the same).
    if (next) next();
    else this.running -= 1;
  }
}
