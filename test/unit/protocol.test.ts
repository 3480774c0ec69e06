import { test, type TestContext } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { decodePayload, parseTopic, serverFilter, topics, assertDeviceId, MAX_PAYLOAD_BYTES } from '../../agent/src/protocol/index.js';
import { devicesMayPublish, devicesMaySubscribe } from '../../fleet-server/src/broker/acl.js';
import { hashDeviceSecret, randomToken, verifyDeviceSecret } from '../../fleet-server/src/db/credentials.js';
import { aclFileText, syncMosquitto } from '../../fleet-server/src/mosquitto/files.js';
import { MosquittoSync, syncConfiguredMosquitto } from '../../fleet-server/src/mosquitto/sync-target.js';
import { parseFleetConfig, type FleetConfig } from '../../fleet-server/src/config/schema.js';
import { waitFor } from '../helpers/wait.js';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertFixture } from '../helpers/fleet.js';

test('topics build and parse round trip; bad ids are refused', () => {
  assert.equal(topics.alert('cam-01'), 'ef/v1/dev/cam-01/alert');
  assert.deepEqual(parseTopic('ef/v1/dev/cam-01/cmd/res'), { deviceId: 'cam-01', kind: 'cmd/res', rest: 'cmd/res' });
  assert.equal(parseTopic('ef/v1/dev/cam-01/ota/chunk/3')?.kind, 'ota');
  assert.equal(parseTopic('ef/v1/dev/+/alert'), undefined);
  assert.equal(parseTopic('other/tree'), undefined);
  assert.equal(serverFilter('alert', true), '$share/fleet/ef/v1/dev/+/alert');
  for (const bad of ['', 'a/b', 'a+', '#', 'x'.repeat(65), 'sp ace']) assert.throws(() => assertDeviceId(bad), /device id/);
});

test('payload codec: valid alert passes; bad JSON, wrong types, oversized and unredacted snapshots are refused with a reason', () => {
  const ok = decodePayload('alert', JSON.stringify(alertFixture('a1')));
  assert.equal(ok.ok, true);
  const badJson = decodePayload('alert', '{"v":1,');
  assert.equal(!badJson.ok && badJson.reason, 'json');
  const wrongType = decodePayload('alert', JSON.stringify({ ...alertFixture('a2'), score: 'high' }));
  assert.equal(!wrongType.ok && wrongType.reason, 'schema');
  assert.match(!wrongType.ok ? wrongType.detail : '', /score/);
  const big = decodePayload('telemetry', Buffer.alloc(MAX_PAYLOAD_BYTES.telemetry + 1, 32));
  assert.equal(!big.ok && big.reason, 'oversized');
  const unredacted = decodePayload('alert', JSON.stringify({ ...alertFixture('a3'), snapshot: { contentType: 'image/jpeg', redacted: false, width: 1, height: 1, dataBase64: 'AAAA' } }));
  assert.equal(!unredacted.ok && unredacted.reason, 'schema');
  const extra = decodePayload('state', JSON.stringify({ v: 1, online: true, ts: 1, sneaky: 1 }));
  assert.equal(!extra.ok && extra.reason, 'schema');
});

test('an alert with NaN or Infinity in it, or a time no Date can hold, is refused where it is made (JSON would send null, which the server refuses, and the outbox resent it forever)', async () => {
  const { AgentLink } = await import('../../agent/src/link/agent-link.js');
  const dir = mkdtempSync(join(tmpdir(), 'ef-nan-'));
  // Nothing listens on port 1: the alerts only reach the outbox.
  const link = new AgentLink({ url: 'mqtt://127.0.0.1:1', deviceId: 'cam-01', secret: 'x', outbox: join(dir, 'outbox.sqlite') });
  link.start();
  try {
    const good = alertFixture('ok-1');
    for (const bad of [{ ...good, id: 'nan-1', box: { ...good.box, x: Number.NaN } }, { ...good, id: 'inf-1', score: Number.POSITIVE_INFINITY }, { ...good, id: 'ns-1', ts: 1.7e18 }]) {
      assert.throws(() => link.publishAlert(bad as never), /does not match the protocol/, bad.id);
    }
    assert.equal(decodePayload('alert', JSON.stringify({ ...good, ts: 9e15 })).ok, false);
    assert.equal(link.publishAlert(good as never), 'ok-1');
  } finally {
    await link.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('device ACL: own device-direction topics only; no wildcards across devices', () => {
  assert.ok(devicesMayPublish('a', 'ef/v1/dev/a/alert'));
  assert.ok(devicesMayPublish('a', 'ef/v1/dev/a/ota/req'));
  assert.ok(!devicesMayPublish('a', 'ef/v1/dev/b/alert'));
  assert.ok(!devicesMayPublish('a', 'ef/v1/dev/a/desired'), 'desired is server → device');
  assert.ok(devicesMaySubscribe('a', 'ef/v1/dev/a/desired'));
  assert.ok(devicesMaySubscribe('a', 'ef/v1/dev/a/#'));
  for (const f of ['ef/v1/dev/+/alert', 'ef/#', '#', 'ef/v1/dev/b/desired', '$share/g/ef/v1/dev/a/cmd', 'ef/v1/dev/a']) assert.ok(!devicesMaySubscribe('a', f), f);
  const acl = aclFileText([{ username: 'svc.fleet-server', password: 'p' }]);
  assert.match(acl, /^pattern write ef\/v1\/dev\/%u\/state$/m);
  assert.match(acl, /^pattern read ef\/v1\/dev\/%u\/desired$/m);
  assert.doesNotMatch(acl, /^pattern \S+ .*[+#]/m, 'no wildcard in a device pattern');
  assert.match(acl, /^user svc\.fleet-server\ntopic readwrite ef\/v1\/#$/m);
});

test('device secret hash is the mosquitto PBKDF2-SHA512 format and verifies', async () => {
  const h = hashDeviceSecret('s3cret');
  assert.match(h, /^\$7\$\d+\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}$/);
  assert.equal(await verifyDeviceSecret('s3cret', h), true);
  assert.equal(await verifyDeviceSecret('wrong', h), false);
  // Produced by `mosquitto_passwd -b pw dev1 s3cret` (mosquitto 2.0.11).
  const fromMosquitto = '$7$101$YEnNHf+BFXvakNCT$u3oJ8uKSOyWkzctwPN6yeVEOPQdkyDGCFjUpuE9nscHKLYg5C+uTFL81di34NVHQfC+LYN1it7G3s4s2Bd9VPA==';
  assert.equal(await verifyDeviceSecret('s3cret', fromMosquitto), true);
});

test('mosquitto sync writes both files and signals only a process that is mosquitto', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-mqsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = { passwordFile: join(dir, 'passwd'), aclFile: join(dir, 'acl'), pidFile: join(dir, 'mosquitto.pid') };
  const sent: number[] = [];
  // A stale pid file naming this node process: no SIGHUP, a clear error, files written anyway.
  writeFileSync(files.pidFile, `${process.pid}\n`);
  assert.throws(() => syncMosquitto(files, [{ id: 'cam-1', secretHash: hashDeviceSecret('s') }], [], (pid) => { sent.push(pid); }), /not mosquitto; the pid file is stale/);
  assert.equal(sent.length, 0);
  assert.match(readFileSync(files.passwordFile, 'utf8'), /^cam-1:\$7\$/);
  assert.match(readFileSync(files.aclFile, 'utf8'), /^pattern write ef\/v1\/dev\/%u\/alert$/m);
  writeFileSync(files.pidFile, 'not-a-pid\n');
  assert.throws(() => syncMosquitto(files, [], [], (pid) => { sent.push(pid); }), /Expected a process id/);
  assert.equal(syncMosquitto({ passwordFile: files.passwordFile, aclFile: files.aclFile }, [], []), false, 'no pid file: files only');
});

/**
 * MosquittoSync against a stand-in broker: python3 named "mosquitto" (prctl PR_SET_NAME, so the pid
 * checks take it for one) that prints a line for each SIGHUP it gets. python3, not node: a node busy
 * loop was once read as asleep on the loaded 2-core machine; python's plain loop runs like
 * mosquitto's single-threaded reload.
 */
const PYTHON = '/usr/bin/python3';
async function standIn(t: TestContext, script: string, opts: { named?: boolean } = {}): Promise<{ files: { passwordFile: string; aclFile: string; pidFile: string }; config: FleetConfig; state: () => string; hups: number[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-mqgap-'));
  const prelude = [
    'import ctypes, os, signal, time',
    opts.named === false ? '' : "ctypes.CDLL(None).prctl(15, b'mosquitto', 0, 0, 0)",
    "signal.signal(signal.SIGHUP, lambda *_: print('hup', flush=True))",
    "print('ready', flush=True)",
  ].join('\n');
  const child = spawn(PYTHON, ['-c', `${prelude}\n${script}`], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  t.after(() => { child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });
  const hups: number[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the python3 stand-in did not start within 10 s: ${stderr}`)), 10_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the python3 stand-in exited with ${code}: ${stderr}`)); });
    child.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (line === 'ready') { clearTimeout(timer); resolve(); }
        if (line === 'hup') hups.push(performance.now());
      }
    });
  });
  const files = { passwordFile: join(dir, 'passwd'), aclFile: join(dir, 'acl'), pidFile: join(dir, 'mosquitto.pid') };
  writeFileSync(files.pidFile, `${child.pid}\n`);
  const config = parseFleetConfig({ dataDir: dir, mosquitto: files, broker: { mode: 'external', external: { url: 'mqtt://127.0.0.1:1', username: 'svc', password: 'p' } } });
  const state = () => { const st = readFileSync(`/proc/${child.pid}/stat`, 'utf8'); return st.charAt(st.lastIndexOf(')') + 2); };
  return { files, config, state, hups, dir };
}
const dev = (id: string) => ({ id, secretHash: hashDeviceSecret('s') });
const noPython = existsSync(PYTHON) ? undefined : `${PYTHON} is missing (the stand-in broker; ./scripts/setup.sh installs python3)`;

test('the running server\'s mosquitto sync writes every change at once and sends one reload per gap, the last after the last write', async (t) => {
  if (noPython) return t.skip(noPython);
  const { files, config, state, hups } = await standIn(t, 'time.sleep(60)');
  await waitFor('the stand-in asleep', () => state() === 'S', 5000, 10);
  const errors: unknown[] = [];
  // A gap of 3 s: time for the first reload to reach this process (python prints it, a pipe carries
  // it) well inside the gap even on a loaded machine, where 1 s left too little.
  const sync = new MosquittoSync(config, { minGapMs: 3000, onError: (err) => errors.push(err) });
  const t0 = performance.now();
  sync.sync([dev('cam-1')]);
  await waitFor('the first reload', () => hups.length > 0, 5000, 10);
  sync.sync([dev('cam-1'), dev('cam-2')]);
  sync.sync([dev('cam-1'), dev('cam-2'), dev('cam-3')]);
  assert.match(readFileSync(files.passwordFile, 'utf8'), /^cam-3:/m, 'files are written at once');
  assert.ok(hups[0] - t0 < 2500, `the first reload is sent at once (${(hups[0] - t0).toFixed(0)} ms)`);
  await waitFor('the trailing reload', () => hups.length > 1, 8000, 10);
  assert.ok(hups[1] - t0 >= 2950, `the trailing reload came ${(hups[1] - t0).toFixed(0)} ms after the first write, within the gap`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(hups.length, 2, 'one trailing reload for the two writes in the gap');
  sync.sync([dev('cam-4')]);
  await sync.close();
  await waitFor('the reload close sends', () => hups.length > 2, 5000, 10);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hups.length, 3, 'and nothing after');
  assert.deepEqual(errors, []);
});

test('the mosquitto reload waits while the broker process is running (a reload in progress would drop the SIGHUP)', async (t) => {
  if (noPython) return t.skip(noPython);
  // Busy until told to stop, then asleep: as mosquitto is while it parses its files, then after.
  const { config, hups, dir } = await standIn(t, "while not os.path.exists('stop'): pass\ntime.sleep(60)");
  const errors: unknown[] = [];
  const sync = new MosquittoSync(config, { minGapMs: 0, onError: (err) => errors.push(err) });
  t.after(() => sync.close());
  sync.sync([dev('cam-1')]);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(hups.length, 0, 'no SIGHUP while the process runs');
  const stoppedAt = performance.now();
  writeFileSync(join(dir, 'stop'), '');
  await waitFor('the reload once the process sleeps', () => hups.length > 0, 5000, 10);
  assert.ok(hups[0] >= stoppedAt);
  assert.deepEqual(errors, []);
});

test('stopping, the mosquitto sync still holds its last reload while the broker runs; writes meanwhile join it; after, it signals at once', async (t) => {
  if (noPython) return t.skip(noPython);
  const { files, config, hups, dir } = await standIn(t, "while not os.path.exists('stop'): pass\ntime.sleep(60)");
  const sync = new MosquittoSync(config, { minGapMs: 10_000, onError: (err) => assert.fail(String(err)) });
  sync.sync([dev('cam-1')]);
  const closed = sync.close();
  sync.sync([dev('cam-1'), dev('cam-2')]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(hups.length, 0, 'no SIGHUP while the process runs, closing or not');
  writeFileSync(join(dir, 'stop'), '');
  await closed;
  await waitFor('the reload close sends', () => hups.length > 0, 5000, 10);
  assert.match(readFileSync(files.passwordFile, 'utf8'), /^cam-2:/m);
  sync.sync([dev('cam-3')]);
  await waitFor('a reload at once after close, gap or not', () => hups.length > 1, 5000, 10);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(hups.length, 2);
});

test('a pid file naming a busy process that is not mosquitto fails the sync at once (no wait on it)', async (t) => {
  if (noPython) return t.skip(noPython);
  const { config } = await standIn(t, 'while True: pass', { named: false });
  const sync = new MosquittoSync(config, { onError: (err) => assert.fail(String(err)) });
  t.after(() => sync.close());
  assert.throws(() => sync.sync([dev('cam-1')]), /not mosquitto; the pid file is stale/);
});

test('fleetctl device add (syncConfiguredMosquitto) also holds its SIGHUP while the broker runs', async (t) => {
  if (noPython) return t.skip(noPython);
  const { config, hups, dir } = await standIn(t, "while not os.path.exists('stop'): pass\ntime.sleep(60)");
  // The call blocks this process while it waits, so another one ends the stand-in's busy spell.
  spawn('/bin/sh', ['-c', 'sleep 0.5; touch stop'], { cwd: dir, stdio: 'ignore' });
  const t0 = performance.now();
  assert.equal(syncConfiguredMosquitto(config, [dev('cam-1')]), true);
  const waited = performance.now() - t0;
  assert.ok(waited >= 400, `returned after ${waited.toFixed(0)} ms, before the broker slept`);
  await waitFor('the SIGHUP', () => hups.length > 0, 5000, 10);
});

test('mosquitto files written by root keep the owner of their directory (the server\'s user, whom mosquitto runs as)', (t) => {
  // `sudo fleetctl device add` rewrote them root:root 0600; mosquitto then could not read its password
  // file after the SIGHUP and refused every device and the server itself.
  if (process.getuid?.() !== 0) return t.skip('needs root (the case is sudo fleetctl)');
  const dir = mkdtempSync(join(tmpdir(), 'ef-mqown-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chownSync(dir, 65534, 65534);
  const files = { passwordFile: join(dir, 'passwd'), aclFile: join(dir, 'acl') };
  syncMosquitto(files, [{ id: 'cam-1', secretHash: hashDeviceSecret('s') }], []);
  for (const f of [files.passwordFile, files.aclFile]) {
    const st = statSync(f);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [65534, 65534, 0o600], f);
  }
});

test('generated secrets and tokens never begin with "-" (they follow options on command lines)', () => {
  // 1 in 64 base64url strings begins with '-': 5,000 draws would show about 78 of them.
  for (let i = 0; i < 5000; i++) {
    const t = randomToken(32);
    assert.ok(!t.startsWith('-'), t);
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
  }
});

test('with TLS, the plain MQTT listener can stay on loopback (plaintextHost): device secrets never cross the network in clear', async () => {
  // The plain listener always bound to broker.embedded.host, next to TLS: a device could send its secret in clear.
  const { mosquittoConfText, managedMosquittoFiles } = await import('../../fleet-server/src/broker/managed-mosquitto.js');
  const conf = mosquittoConfText(managedMosquittoFiles('/var/lib/edge-fleet'), { host: '0.0.0.0', port: 1883, plainHost: '127.0.0.1', tls: { port: 8883, certPath: '/etc/c.pem', keyPath: '/etc/k.pem' } }, 'edge-fleet');
  assert.match(conf, /^listener 1883 127\.0\.0\.1$/m);
  assert.match(conf, /^listener 8883 0\.0\.0\.0$/m);
  const { EmbeddedBroker } = await import('../../fleet-server/src/broker/embedded.js');
  const { DeviceStore } = await import('../../fleet-server/src/db/devices.js');
  const { openDatabase } = await import('../../fleet-server/src/db/database.js');
  const broker = new EmbeddedBroker({ host: '0.0.0.0', port: 0, plainHost: '127.0.0.1', devices: new DeviceStore(openDatabase(':memory:')), onMessage: () => undefined, filters: [] });
  await broker.start();
  try {
    assert.equal(broker.plainAddress, '127.0.0.1');
  } finally {
    await broker.stop();
  }
});
