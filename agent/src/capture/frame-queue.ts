/**
 * Bounded queue between capture and the pipeline. Live sources drop the oldest frame when full
 * (the newest frame is the one worth processing) and count every drop; non-live sources (files)
 * apply back-pressure instead, so that every decoded frame is processed.
 */
export type QueuePolicy = 'drop-oldest' | 'block';

export class FrameQueue<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;
  private spaceWaiter: (() => void) | undefined;
  private ended = false;
  dropped = 0;
  pushed = 0;

  constructor(private readonly capacity: number, private readonly policy: QueuePolicy, private readonly onDrop?: (item: T) => void) {}

  get length(): number {
    return this.items.length;
  }

  /** Adds an item; with `block`, resolves only when there is room. */
  async push(item: T): Promise<void> {
    if (this.ended) return;
    while (this.items.length >= this.capacity) {
      if (this.policy === 'drop-oldest') {
        const old = this.items.shift() as T;
        this.dropped++;
        this.onDrop?.(old);
      } else {
        await new Promise<void>((r) => { this.spaceWaiter = r; });
        if (this.ended) return;
      }
    }
    this.items.push(item);
    this.pushed++;
    this.wake();
  }

  /** Next item, or undefined once ended and drained. */
  async shift(): Promise<T | undefined> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        const s = this.spaceWaiter;
        this.spaceWaiter = undefined;
        s?.();
        return item;
      }
      if (this.ended) return undefined;
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }

  end(): void {
    this.ended = true;
    this.wake();
    const s = this.spaceWaiter;
    this.spaceWaiter = undefined;
    s?.();
  }

  /** Drops what is queued (counted) and ends. */
  clear(): number {
    const n = this.items.length;
    this.dropped += n;
    this.items.length = 0;
    this.end();
    return n;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
