/** Waits for a condition by polling, with a timeout that names what was awaited (no bare sleeps). */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) {
      // A stall of this process (a loaded machine) can pass the deadline while what was awaited is
      // already due (a socket read, a timer): the sleep's timer ran before them. Let them run, look once more.
      await new Promise((r) => setTimeout(r, everyMs));
      const last = await probe();
      if (last !== undefined && last !== false) return last;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A free TCP port on 127.0.0.1 for a process that cannot bind port 0 (mosquitto). It is taken from
 * below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), so no other test's
 * port-0 listener or outgoing connection can be handed it between this check and the bind, nor
 * while a broker restarts on it.
 */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const { readFileSync } = await import('node:fs');
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch { /* not Linux: keep the usual bound */ }
  const from = 10_000;
  const span = Math.max(1000, low - from);
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * span);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port found between ${from} and ${from + span}`);
}
