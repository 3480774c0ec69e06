/**
 * sd_notify against a real AF_UNIX SOCK_DGRAM listener (python3, the stand-in for systemd's
 * notify socket). It also reads SCM_CREDENTIALS, as systemd does, to prove the datagrams come from
 * the agent's own PID (so the unit can keep NotifyAccess=main).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait.js';
import { notifyListenerUnavailable, startNotifyListener } from '../helpers/notify-socket.js';
import { binaryEntry } from '../helpers/cli.js';
import { tsEntry } from '../helpers/repo.js';

function lines(child: ChildProcess, into: string[]): void {
  createInterface({ input: child.stdout! }).on('line', (l) => into.push(l));
}

test('READY after the first frame, WATCHDOG only while frames move, STOPPING and exit 0 on SIGTERM', { timeout: 60_000 }, async (t) => {
  const unavailable = notifyListenerUnavailable();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }
  const listener = await startNotifyListener();
  const socketPath = listener.socketPath;
  const grams = listener.datagrams;
  let agent: ChildProcess | undefined;
  try {
    // WATCHDOG_USEC 400 ms → a tick every 200 ms.
    agent = spawn(process.execPath, tsEntry('test/fixtures/service/notify-child.ts'), {
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

    // SIGHUP: RELOADING=1 (with MONOTONIC_USEC), the reload step, then READY=1 again.
    agent.kill('SIGHUP');
    await waitFor('READY=1 after the reload', () => grams().filter((d) => d.msg.startsWith('READY=1')).length >= 2, 10_000);
    const reloading = grams().findIndex((d) => d.msg.startsWith('RELOADING=1\nMONOTONIC_USEC='));
    assert.ok(reloading > 0 && out.includes('reloaded'), 'RELOADING=1 sent and the reload step ran');

    // Stall the "camera": at most the ping for the interval in which frames last moved, then none.
    agent.kill('SIGUSR2');
    await waitFor('the child to stall', () => out.includes('stalled'), 10_000);
    const pingsNow = (): number => grams().filter((d) => d.msg === 'WATCHDOG=1').length;
    const atStall = pingsNow();
    const waitMs = async (ms: number): Promise<void> => {
      const until = Date.now() + ms;
      await waitFor(`${ms} ms to pass`, () => Date.now() >= until, ms + 5000);
    };
    // Ticking on, 1.45 s would bring about 7. The one allowed may reach this process late (a stall of
    // the loaded machine): counted over the whole window, not at a point in it.
    await waitMs(1450);
    assert.ok(pingsNow() <= atStall + 1, `watchdog pings during 1.45 s of stall: ${pingsNow() - atStall}`);

    const t0 = Date.now();
    agent.kill('SIGTERM');
    const code = await exited;
    const stopMs = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(stopMs < 5000, `stopped in ${stopMs} ms`);
    assert.ok(grams().some((d) => d.msg === 'STOPPING=1'), 'STOPPING=1 sent');
    assert.ok(out.some((l) => l.startsWith('flushed alert-')), 'outbox step ran');
    const pings = grams().filter((d) => d.msg === 'WATCHDOG=1').length;
    process.stdout.write(`# notify: ${grams().length} datagrams, ${pings} watchdog pings, stop ${stopMs} ms\n`);
  } finally {
    agent?.kill('SIGKILL');
    listener.stop();
  }
});

test('fleet-server serve under a notify socket: READY once listening, WATCHDOG, STOPPING and exit 0 on SIGTERM', { timeout: 60_000 }, async (t) => {
  const unavailable = notifyListenerUnavailable();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }
  const listener = await startNotifyListener();
  const dataDir = mkdtempSync(join(tmpdir(), 'ef-fleet-notify-'));
  const server = spawn(process.execPath, [binaryEntry('fleet-server'), 'serve', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0', '--json'], {
    env: { ...process.env, NOTIFY_SOCKET: listener.socketPath, WATCHDOG_USEC: '400000', EF_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  try {
    const grams = listener.datagrams;
    await waitFor('READY=1 from fleet-server', () => grams().some((d) => d.msg.startsWith('READY=1')), 30_000);
    assert.equal(grams().find((d) => d.msg.startsWith('READY=1'))!.pid, server.pid);
    await waitFor('a watchdog ping', () => grams().some((d) => d.msg === 'WATCHDOG=1'), 10_000);
    server.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(grams().some((d) => d.msg === 'STOPPING=1'));
  } finally {
    server.kill('SIGKILL');
    listener.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
