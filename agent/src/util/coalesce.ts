import { performance } from 'node:perf_hooks';

/**
 * `fn` at most once every `minGapMs`: a call within the gap of the last run is deferred to the end of
 * the gap, and any further calls meanwhile join that one. The first call runs at once. `now` is a
 * monotonic clock (ms) by default: on the wall clock, an NTP step back of an hour after a run
 * deferred the next one an hour.
 */
export function coalesce(fn: () => void, minGapMs: number, now: () => number = () => performance.now()): () => void {
  let lastRun = Number.NEGATIVE_INFINITY;
  let pending: ReturnType<typeof setTimeout> | undefined;
  const run = (): void => {
    pending = undefined;
    lastRun = now();
    fn();
  };
  return () => {
    if (pending) return;
    const wait = lastRun + minGapMs - now();
    if (wait <= 0) { run(); return; }
    pending = setTimeout(run, wait);
    pending.unref?.();
  };
}
