/**
 * sd_notify against a real AF_UNIX SOCK_DGRAM listener (python3, the stand-in for systemd's
 * notify socket). It also reads SCM_CREDENTIALS, as systemd does, to prove the datagrams come from
 * the agent's own PID (so the unit can keep NotifyAccess=main).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from '../helpers/wait.js';

const LISTENER = `
import socket, sys, json, time, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"t": time.monotonic(), "pid": pid, "msg": msg.decode()}), flush=True)
`;

interface Datagram { t: number; pid: number | null; msg: string }

function lines(child: ChildProcess, into: string[]): void {
  createInterface({ input: child.stdout! }).on('line', (l) => into.push(l));
}

test('READY after the first frame, WATCHDOG only while frames move, STOPPING and exit 0 on SIGTERM', { timeout: 60_000 }, async (t) => {
  if (spawnSync('python3', ['-c', 'import socket; socket.SCM_CREDENTIALS'], { stdio: 'ignore' }).status !== 0) {
    t.skip('python3 with socket.SCM_CREDENTIALS is needed for the notify-socket listener');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-notify-'));
  const socketPath = join(dir, 'notify');
  const listener = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const raw: string[] = [];
  lines(listener, raw);
  const grams = (): Datagram[] => raw.map((l) => JSON.parse(l) as Datagram & { listening?: boolean }).filter((d) => !d.listening);
  let agent: ChildProcess | undefined;
  try {
    await waitFor('the notify listener', () => raw.length > 0, 10_000);
    // WATCHDOG_USEC 400 ms → a tick every 200 ms.
    agent = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/service/notify-child.ts'], {
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000', EF_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out: string[] = [];
    lines(agent, out);
    const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
    await waitFor('READY=1', () => grams().some((d) => d.msg.startsWith('READY=1')), 20_000);
    await waitFor('3 watchdog pings', () => grams().filter((d) => d.msg === 'WATCHDOG=1').length >= 3, 10_000);
    const ready = grams().find((d) => d.msg.startsWith('READY=1'))!;
    assert.equal(ready.pid, agent.pid, 'datagrams carry the agent PID (NotifyAccess=main works)');
    assert.match(ready.msg, /STATUS=first frame processed/);
    assert.ok(grams().findIndex((d) => d.msg.startsWith('READY=1')) < grams().findIndex((d) => d.msg === 'WATCHDOG=1'), 'no WATCHDOG before READY');

    // Stall the "camera": pings must stop.
    agent.kill('SIGUSR2');
    const tStall = grams().at(-1)!.t;
    const stallWallMs = Date.now();
    await waitFor('1.2 s of stall', () => Date.now() - stallWallMs > 1200 || undefined, 5000);
    const afterStall = grams().filter((d) => d.msg === 'WATCHDOG=1' && d.t > tStall + 0.25);
    assert.equal(afterStall.length, 0, `watchdog pings after the stall: ${afterStall.length}`);

    const t0 = Date.now();
    agent.kill('SIGTERM');
    const code = await exited;
    const stopMs = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(stopMs < 3000, `stopped in ${stopMs} ms`);
    assert.ok(grams().some((d) => d.msg === 'STOPPING=1'), 'STOPPING=1 sent');
    assert.ok(out.some((l) => l.startsWith('flushed alert-')), 'outbox step ran');
    const pings = grams().filter((d) => d.msg === 'WATCHDOG=1').length;
    process.stdout.write(`# notify: ${grams().length} datagrams, ${pings} watchdog pings, stop ${stopMs} ms\n`);
  } finally {
    agent?.kill('SIGKILL');
    listener.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
