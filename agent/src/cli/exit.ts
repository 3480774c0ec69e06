/**
 * Exit once the command has finished and stdout/stderr are flushed. Native addons can keep the event
 * loop alive after their work is done (seen intermittently after a GStreamer pipeline reached NULL:
 * no JS handle left, yet the loop did not end), so a finished CLI command never waits for that.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => {
    if (s.writableLength === 0) resolve();
    else s.write('', () => resolve());
  })));
  process.exit(code);
}
