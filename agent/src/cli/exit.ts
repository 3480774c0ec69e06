/**
 * Ends a finished CLI command with `code`.
 *
 * The process is left to end by itself once the event loop is empty: Node then disposes the V8
 * isolate, which stops V8's background compile threads, before the platform goes away. process.exit()
 * shuts the platform down first while the isolate lives on through exit(), so a Turbofan job still
 * compiling on a background thread can ask for the isolate's task runner and abort the process with
 * "NodePlatform::ForIsolate … Assertion failed: (data.first) != nullptr" (seen in CI after
 * `edge-agent redact` had printed its result: a native stack and exit 1 instead of 0; the
 * dispose/detach race is the one discussed in nodejs/node#31752).
 *
 * Native addons can keep the event loop alive after their work is done (seen intermittently after a
 * GStreamer pipeline reached NULL: no JS handle left, yet the loop did not end), so a finished
 * command never waits on that: an unreferenced timer calls process.exit() after `graceMs`. It fires
 * only while something else holds the loop open, by when the command's compile jobs have long ended.
 */
export async function exitWhenFlushed(code: number, graceMs = 1500): Promise<void> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => {
    if (s.writableLength === 0) resolve();
    else s.write('', () => resolve());
  })));
  process.exitCode = code;
  setTimeout(() => process.exit(code), graceMs).unref();
}
