/**
 * Agent killed with SIGKILL while its outbox holds alerts: after a restart on the same state dir,
 * every alert is delivered and stored exactly once, in the device's order. The killed agent's last
 * will also marks it offline. aedes and mosquitto run concurrently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startFleet, type BrokerKind } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { Outbox } from '../../agent/src/outbox/outbox.js';
import { tsEntry } from '../helpers/repo.js';

const COUNT = 200;

async function crash(kind: BrokerKind): Promise<void> {
  const fleet = await startFleet({ broker: kind });
  try {
    const dev = fleet.addDevice('cam-kill');
    const outboxPath = join(fleet.dir, 'agents', 'cam-kill', 'outbox.sqlite');
    const child = spawn(process.execPath, [...tsEntry('test/helpers/agent-child.ts'), JSON.stringify({ deviceId: dev.id, secret: dev.secret, url: fleet.mqttUrl, outboxPath, count: COUNT, prefix: 'k' })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await waitFor('child delivered its first alert', () => /first-delivered/.test(out), 20_000);
    child.kill('SIGKILL');
    await exited;
    // What the killed process left behind, read from its outbox file.
    const left = new Outbox({ path: outboxPath });
    left.start();
    const pendingAfterKill = left.stats().pending;
    left.stop();
    const storedBeforeRestart = fleet.server.alerts.count('cam-kill');
    // The kernel closes the dead process's socket, so the broker publishes its will at once.
    await waitFor('last will marks the killed agent offline', () => fleet.server.devices.get('cam-kill')?.online === false, 5000);
    const link = fleet.agentLink(dev, { outbox: outboxPath });
    link.start();
    await waitFor(`${COUNT} alerts stored`, () => fleet.server.alerts.count('cam-kill') === COUNT, 20_000);
    await waitFor('outbox drained', () => link.outbox.stats().pending === 0, 10_000);
    const ids = fleet.server.alerts.idsInDeviceOrder('cam-kill');
    console.log(`${kind}: SIGKILL with ${pendingAfterKill}/${COUNT} alerts pending in the outbox (${storedBeforeRestart} stored before restart); after restart ${ids.length} stored, ${fleet.server.ingest.getStats().alertsDuplicate} duplicates ignored`);
    assert.ok(pendingAfterKill > 0, 'the outbox held alerts when the agent was killed');
    assert.equal(ids.length, COUNT);
    assert.deepEqual(ids, Array.from({ length: COUNT }, (_, i) => `k-${String(i).padStart(3, '0')}`));
  } finally {
    await fleet.stop();
  }
}

test('agent SIGKILLed with alerts in its outbox: all delivered after restart (aedes and mosquitto)', { timeout: 90_000 }, async (t) => {
  const runs: Promise<void>[] = [crash('aedes')];
  if (mosquittoAvailable()) runs.push(crash('mosquitto'));
  else t.diagnostic('mosquitto variant skipped: binary not installed');
  await Promise.all(runs);
});
