/**
 * Arranges the end of a finished CLI command with `code`.
 *
 * The process is left to end by itself once its event loop is empty. Node then drains the V8
 * platform's background tasks (Turbofan compile jobs among them) before it tears any isolate down.
 * CI once saw `edge-agent redact` abort after printing its result ("NodePlatform::ForIsolate …
 * Assertion failed: (data.first) != nullptr", from a background Turbofan job; exit 1 instead of 0):
 * a compile job still running when its isolate had been unregistered from the platform (the
 * unregister/dispose order discussed in nodejs/node#31752). Which isolate it was is not known, so
 * the inference worker ends the same way (platform-adapters/onnxruntime/ort-worker.ts); what is
 * left are exits that skip the drain: the timer below, the service's forced exits and terminated
 * TFLite workers. The abort did not reproduce here in 140 runs: this removes the likely cause,
 * it does not prove it.
 *
 * Native addons can keep the event loop alive after their work is done (seen intermittently after a
 * GStreamer pipeline reached NULL: no JS handle left, yet the loop did not end), so a finished
 * command never waits on that: an unreferenced timer calls process.exit() after `graceMs`. It fires
 * only while something else holds the loop open; then the race above is possible again, a trade for
 * a command that ends.
 */
export async function exitWhenFlushed(code: number, graceMs = 1500): Promise<void> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => {
    if (s.writableLength === 0) resolve();
    else s.write('', () => resolve());
  })));
  process.exitCode = code;
  setTimeout(() => process.exit(), graceMs).unref();
}
