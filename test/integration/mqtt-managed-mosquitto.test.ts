/**
 * The fleet server's own mosquitto (broker.embedded.engine "mosquitto"): agents get MQTT 5 from a
 * plain `fleet-server serve`; a mosquitto that dies is restarted and no alert is lost; devices added
 * with `fleetctl device add --config` while it runs can connect (files rewritten, SIGHUP); a fleet
 * server killed with SIGKILL leaves a mosquitto that the next start ends; a taken port is a clear
 * error. The ACL and malformed-payload suites run on this engine too (mqtt-acl.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertFixture, startFleet } from '../helpers/fleet.js';
import { mosquittoAvailable } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/wait.js';
import { runCli, binaryEntry } from '../helpers/cli.js';
import { livePid, managedMosquittoFiles } from '../../fleet-server/src/broker/managed-mosquitto.js';

const skip = mosquittoAvailable() ? false : 'mosquitto binary not installed (scripts/setup.sh installs it)';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('agents speak MQTT 5 to the fleet server\'s mosquitto; a killed mosquitto is restarted and every alert is stored once', { skip, timeout: 90_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'mosquitto-embedded' });
  t.after(() => fleet.stop());
  const m = fleet.server.mosquitto!;
  const dev = fleet.addDevice('cam-m5');
  // The server writes the password file and sends SIGHUP; mosquitto applies it asynchronously.
  const link = fleet.agentLink(dev);
  link.start();
  await link.waitConnected(10_000);
  assert.equal(link.status().protocolVersion, 5, 'the agent negotiated MQTT 5');
  link.publishAlert(alertFixture('m5-before'));
  await waitFor('first alert stored', () => fleet.server.alerts.count(dev.id) === 1, 10_000);

  const desired: number[] = [];
  link.on('desired', (d: { rev: number }) => desired.push(d.rev));
  fleet.server.ota.desired.set(dev.id, 'detector', { version: '1.0.0' });
  await waitFor('the first desired state reached the device', () => desired.includes(1) || undefined, 10_000);

  const firstPid = m.pid!;
  process.kill(firstPid, 'SIGKILL');
  // While the broker is down the outbox keeps the alerts, and the server's next desired state is dropped.
  for (let i = 0; i < 5; i++) link.publishAlert(alertFixture(`m5-outage-${i}`));
  await waitFor('the server saw its broker go', () => (fleet.server.status().broker as { connected: boolean }).connected === false || undefined, 10_000, 5);
  fleet.server.ota.desired.set(dev.id, 'detector', { version: '1.0.1' });
  await waitFor('mosquitto restarted by the fleet server', () => m.restarts >= 1 && m.running && m.pid !== firstPid, 20_000);
  await waitFor('the agent reconnected', () => link.status().connects >= 2, 20_000);
  // Republished once the server is back on the broker: devices went back to the model before.
  await waitFor('the desired state set during the outage reached the device', () => desired.includes(2) || undefined, 20_000);
  await waitFor('all 6 alerts stored', () => fleet.server.alerts.count(dev.id) === 6, 20_000);
  await waitFor('the outbox emptied by the server\'s acks', () => link.status().outbox.pending === 0, 10_000);
  const status = fleet.server.status().broker as { engine: string; restarts: number; running: boolean };
  assert.equal(status.engine, 'mosquitto');
  assert.ok(status.restarts >= 1 && status.running);
  const pid = m.pid!;
  await fleet.server.stop();
  assert.equal(alive(pid), false, 'stopping the fleet server stops its mosquitto');
});

async function serve(dataDir: string, port: number, httpPort = 0): Promise<{ child: ChildProcess; ready: Promise<{ mqtt: number; http: number }>; stderr: () => string }> {
  const child = spawn(process.execPath, [binaryEntry('fleet-server'), 'serve', '--data-dir', dataDir, '--mqtt-engine', 'mosquitto', '--mqtt-port', String(port), '--http-port', String(httpPort), '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EF_LOG_LEVEL: 'warn' },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ready = waitFor('fleet-server serve ready', () => {
    if (child.exitCode !== null) throw new Error(`fleet-server exited with ${child.exitCode}: ${err}`);
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return line ? JSON.parse(line) as { mqtt: number; http: number } : undefined;
  }, 30_000, 50);
  return { child, ready, stderr: () => err };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((res) => child.once('exit', (code) => res(code)));
}

test('fleetctl adds a device to a running server\'s mosquitto; a SIGKILLed server\'s mosquitto is ended by the next start; a taken port is a clear error', { skip, timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-managed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = managedMosquittoFiles(dir);
  const port = await freePort();
  const first = await serve(dir, port);
  t.after(() => { first.child.kill('SIGKILL'); });
  assert.equal((await first.ready).mqtt, port);
  const orphan = livePid(files)!;
  assert.ok(orphan > 0 && alive(orphan), 'the pid file names the running mosquitto');

  // A device added straight into the registry (the server is not asked) can connect with MQTT 5.
  const added = await runCli('fleetctl', ['device', 'add', 'cam-cli', '--data-dir', dir, '--json']);
  assert.equal(added.code, 0, added.stderr);
  const { secret } = JSON.parse(added.stdout) as { secret: string };
  assert.match(readFileSync(files.passwordFile, 'utf8'), /^cam-cli:\$7\$/m);
  const fleetMqtt = await import('mqtt');
  const connectOnce = () => new Promise<boolean>((res) => {
    const c = fleetMqtt.default.connect(`mqtt://127.0.0.1:${port}`, { username: 'cam-cli', password: secret, protocolVersion: 5, reconnectPeriod: 0, clientId: 'ef-cam-cli' });
    c.once('connect', () => { c.end(true); res(true); });
    c.once('error', () => { c.end(true); res(false); });
  });
  await waitFor('cam-cli accepted after fleetctl device add', () => connectOnce(), 5000, 100);

  // SIGKILL: the server cannot stop its child, which keeps the port.
  first.child.kill('SIGKILL');
  await exitOf(first.child);
  assert.ok(alive(orphan), 'mosquitto outlives a SIGKILLed fleet server');
  const second = await serve(dir, port);
  t.after(() => { second.child.kill('SIGKILL'); });
  await second.ready;
  await waitFor('the orphan is gone', () => !alive(orphan), 5000);
  const fresh = livePid(files)!;
  assert.ok(fresh !== orphan && alive(fresh));
  assert.ok(await connectOnce(), 'cam-cli still connects: the registry and password file survived');
  second.child.kill('SIGTERM');
  assert.equal(await exitOf(second.child), 0);
  assert.equal(alive(fresh), false, 'SIGTERM to the fleet server stops its mosquitto');

  // A port held by another process: exit non-zero with the port and the fix named, no child left.
  const holder = createServer();
  const heldPort = await freePort();
  await new Promise<void>((res) => holder.listen(heldPort, '0.0.0.0', res));
  t.after(() => { holder.close(); });
  const third = await serve(join(dir, 'other'), heldPort);
  const code = await exitOf(third.child);
  await third.ready.catch(() => undefined);
  assert.notEqual(code, 0);
  assert.match(third.stderr(), new RegExp(`${heldPort}[\\s\\S]*Address already in use[\\s\\S]*(systemctl disable --now mosquitto|broker\\.embedded\\.port)`));
  assert.equal(livePid(managedMosquittoFiles(join(dir, 'other'))), undefined, 'no mosquitto left behind');
});

test('engine "mosquitto" refuses port 0 and a leftover external "mosquitto" section, naming the field', () => {
  return import('../../fleet-server/src/config/schema.js').then(({ parseFleetConfig }) => {
    assert.throws(() => parseFleetConfig({ broker: { embedded: { engine: 'mosquitto', port: 0 } } }), /broker\.embedded\.port/);
    assert.throws(() => parseFleetConfig({ broker: { embedded: { engine: 'mosquitto', port: 1883 } }, mosquitto: { passwordFile: 'p', aclFile: 'a' } }), /Remove the "mosquitto" section/);
    assert.throws(() => parseFleetConfig({ broker: { embedded: { engine: 'nats' } } }), /broker\/embedded\/engine|broker\.embedded\.engine/);
  });
});
