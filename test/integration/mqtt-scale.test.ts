/**
 * External mosquitto: two fleet-server replicas on one broker split the ingest through MQTT 5 shared
 * subscriptions and store each alert once; the registry drives mosquitto's password and ACL files
 * (reload by SIGHUP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { parseFleetConfig } from '../../fleet-server/src/config/schema.js';
import { hashDeviceSecret } from '../../fleet-server/src/db/credentials.js';
import { writeMosquittoFiles } from '../../fleet-server/src/mosquitto/files.js';
import { MosquittoSync } from '../../fleet-server/src/mosquitto/sync-target.js';
import { alertFixture, spawnReplica, startFleet } from '../helpers/fleet.js';
import { mosquittoAvailable, TestMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const PER_DEVICE = 100;

test('two fleet-server processes on one mosquitto split the ingest and store each alert once', { skip: mosquittoAvailable() ? false : 'mosquitto binary not installed', timeout: 90_000 }, async (t) => {
  const a = await startFleet({ broker: 'mosquitto', replicaId: 'fs-a' });
  t.after(() => a.stop());
  // Replica B is a real `fleet-server serve` process on the same broker and SQLite file.
  const b = await spawnReplica(a, 'fs-b');
  t.after(async () => { await b.stop(); });
  const devs = [a.addDevice('cam-s1'), a.addDevice('cam-s2')];
  const links = devs.map((d) => a.agentLink(d));
  for (const l of links) l.start();
  await Promise.all(links.map((l) => l.waitConnected()));
  for (let i = 0; i < PER_DEVICE; i++) for (const [n, l] of links.entries()) l.publishAlert(alertFixture(`s${n}-${String(i).padStart(3, '0')}`));
  await waitFor(`${2 * PER_DEVICE} alerts stored`, () => a.server.alerts.count() === 2 * PER_DEVICE, 20_000);
  await Promise.all(links.map((l) => waitFor('outbox drained', () => l.outbox.stats().pending === 0, 10_000)));
  // Replay two alerts that are already stored, straight to the broker: still stored once.
  const raw = await mqtt.connectAsync(a.mqttUrl, { username: devs[0].id, password: devs[0].secret, protocolVersion: 5 });
  t.after(() => raw.endAsync());
  const duplicates = async () => a.server.ingest.getStats().alertsDuplicate + (await b.status()).ingest.alertsDuplicate;
  const before = await duplicates();
  for (const id of ['s0-000', 's0-001']) await raw.publishAsync('ef/v1/dev/cam-s1/alert', JSON.stringify(alertFixture(id)), { qos: 1 });
  await waitFor('replays seen as duplicates', async () => (await duplicates()) >= before + 2, 5000, 100);
  const fa = a.server.ingest.getStats();
  const fb = (await b.status()).ingest;
  console.log(`shared subscriptions: replica A stored ${fa.alertsStored}, replica B stored ${fb.alertsStored} (duplicates ignored ${fa.alertsDuplicate + fb.alertsDuplicate}); total rows ${a.server.alerts.count()}`);
  assert.equal(fa.alertsStored + fb.alertsStored, 2 * PER_DEVICE, 'each alert stored by exactly one replica');
  assert.ok(fa.alertsStored > 0 && fb.alertsStored > 0, 'both replicas took a share');
  assert.equal(a.server.alerts.count(), 2 * PER_DEVICE);
  for (const [n, d] of devs.entries()) {
    assert.deepEqual(a.server.alerts.idsInDeviceOrder(d.id), Array.from({ length: PER_DEVICE }, (_, i) => `s${n}-${String(i).padStart(3, '0')}`));
  }
});

test('mosquitto files follow the registry: add → accepted, delete → refused (SIGHUP reload)', { skip: mosquittoAvailable() ? false : 'mosquitto binary not installed' }, async (t) => {
  const fleet = await startFleet({ broker: 'mosquitto' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-new');
  const passwd = readFileSync(fleet.mosquitto!.passwordFile, 'utf8');
  assert.match(passwd, /^cam-new:\$7\$\d+\$/m);
  assert.ok(!passwd.includes(dev.secret), 'no plaintext secret in the password file');
  // The ACL is the same for every device (patterns on %u): only the password file names it.
  assert.doesNotMatch(readFileSync(fleet.mosquitto!.aclFile, 'utf8'), /cam-new/);
  const opts = { username: dev.id, password: dev.secret, protocolVersion: 5 as const, reconnectPeriod: 0 };
  const c = await waitFor('new device accepted after reload', () => mqtt.connectAsync(fleet.mqttUrl, opts).catch(() => undefined), 5000, 100);
  await c.endAsync();
  const del = await fleet.api('DELETE', '/api/devices/cam-new');
  assert.equal(del.status, 200);
  await waitFor('deleted device refused after reload', () => mqtt.connectAsync(fleet.mqttUrl, opts).then(async (x) => { await x.endAsync(); return false; }, () => true), 5000, 100);
});

/**
 * mosquitto drops a SIGHUP that arrives while it reloads (sync-target.ts MosquittoSync). 40 000
 * registered devices make each reload long enough (~0.1 s here) to land in: a device added 0-240 ms
 * after another, over 13 rounds, must be accepted every time. Sending every SIGHUP at once, as the
 * server did before, left the rounds 60-160 ms apart refused for good (6 of 13 here). With one ACL
 * section per device (before files.ts aclFileText used patterns) mosquitto did not even start with
 * this many devices within the 10 s readiness bound.
 */
test('devices added in quick succession are all accepted although mosquitto drops a SIGHUP that arrives mid-reload', { skip: mosquittoAvailable() ? false : 'mosquitto binary not installed', timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-reload-'));
  const broker = new TestMosquitto({ dir });
  t.after(async () => {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = parseFleetConfig({
    dataDir: dir,
    mosquitto: { passwordFile: broker.passwordFile, aclFile: broker.aclFile, pidFile: broker.pidFile },
    broker: { mode: 'external', external: { url: 'mqtt://127.0.0.1:1', username: 'svc.fleet-server', password: 'svc-pass', clientId: 'reload-test', protocolVersion: 5 } },
  });
  const errors: unknown[] = [];
  const sync = new MosquittoSync(config, { onError: (err) => errors.push(err) });
  t.after(() => sync.close());
  // One real hash serves them all: mosquitto parses every line of both files on each reload.
  const secret = 'quick-succession-secret';
  const secretHash = hashDeviceSecret(secret);
  const devices = Array.from({ length: 40_000 }, (_, i) => ({ id: `bulk-${i}`, secretHash }));
  writeMosquittoFiles(broker, devices, []);
  await broker.start();
  const accepted = (id: string) => mqtt.connectAsync(broker.url, { username: id, password: secret, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 2000 })
    .then(async (c) => { await c.endAsync(); return true; }, () => false);
  const refused: string[] = [];
  for (let round = 0; round <= 12; round++) {
    devices.push({ id: `first-${round}`, secretHash });
    sync.sync(devices);
    await new Promise((r) => setTimeout(r, round * 20));
    devices.push({ id: `second-${round}`, secretHash });
    sync.sync(devices);
    // The default gap (0.5 s) before the trailing reload, then mosquitto's read of the files.
    const ok = await waitFor(`second-${round} accepted`, () => accepted(`second-${round}`), 8000, 50).catch(() => false);
    if (!ok) refused.push(`second-${round} (added ${round * 20} ms after first-${round})`);
  }
  for (let round = 0; round <= 12; round++) if (!(await accepted(`first-${round}`))) refused.push(`first-${round}`);
  assert.deepEqual(errors, []);
  assert.deepEqual(refused, [], 'every device added is accepted once its reload has had time');
});
