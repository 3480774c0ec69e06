/**
 * libuv's thread pool and the cameras. gstreamer-superficial runs each camera's bus poll
 * (`gst_bus_timed_pop` with no timeout) and each appsink pull on a pool thread that it holds until
 * GStreamer answers: the poll for as long as the pipeline runs, the pull until the next frame. With
 * as many cameras as threads, the polls held them all, and every pull, sharp resize and fs write
 * waited for ever (16 cameras on the pool of 16 stalled after ~4 frames each, without an error).
 * The pool's size is read once, before the first line of the agent runs (UV_THREADPOOL_SIZE), so the
 * launchers set it: bin/edge-agent.js from the config's camera count, the release's bin/edge-agent
 * and the systemd unit for MAX_CAMERAS.
 */

/** Most cameras one agent runs (the config refuses more): the pool the launchers set is sized for them. */
export const MAX_CAMERAS = 64;
/** Threads beyond the cameras' own, for sharp, fs, zlib and DNS. */
const OTHER_WORK_THREADS = 4;
/** libuv's limit (MAX_THREADPOOL_SIZE in libuv's src/threadpool.c). */
const LIBUV_MAX = 1024;

/** The pool `cameras` cameras need: a bus poll and a pull each, and room for the rest of the agent's work. */
export function threadPoolSizeFor(cameras: number): number {
  return 2 * cameras + OTHER_WORK_THREADS;
}

/** The pool libuv makes from `value` (UV_THREADPOOL_SIZE): 4 when unset, atoi, 0 taken as 1, at most 1024. */
export function threadPoolSizeOf(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = Number.parseInt(value, 10);
  return Math.min(Number.isFinite(n) && n > 0 ? n : 1, LIBUV_MAX);
}
