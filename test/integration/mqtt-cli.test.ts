/** The binaries: `fleet-server serve` starts and answers, `fleetctl device add/list` work on its registry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { waitFor } from '../helpers/wait.js';
import { binaryEntry } from '../helpers/cli.js';

const run = promisify(execFile);

test('fleet-server serve + fleetctl device add: a new device connects with the printed secret', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'fleet.json');
  writeFileSync(config, JSON.stringify({ dataDir: dir, broker: { embedded: { host: '127.0.0.1', port: 0 } }, http: { port: 0 }, operator: { password: 'cli-test-password' } }));
  const added = await run(process.execPath, [binaryEntry('fleetctl'), 'device', 'add', 'cam-cli', '--config', config, '--json']);
  const dev = JSON.parse(added.stdout) as { id: string; secret: string };
  assert.equal(dev.id, 'cam-cli');
  assert.ok(dev.secret.length >= 40);
  const again = await run(process.execPath, [binaryEntry('fleetctl'), 'device', 'add', 'cam-cli', '--config', config]).catch((e: { code: number; stderr: string }) => e);
  assert.ok('code' in again && again.code !== 0 && /already exists/.test(again.stderr));
  // A mistyped data dir is not a new fleet: refused, nothing created (the device would be in a registry no server reads).
  const typo = join(dir, 'typo');
  const lost = await run(process.execPath, [binaryEntry('fleetctl'), 'device', 'add', 'cam-x', '--data-dir', typo]).catch((e: { code: number; stderr: string }) => e);
  assert.ok('code' in lost && lost.code === 4 && /data dir .*typo \(--data-dir\) does not exist/.test(lost.stderr), JSON.stringify(lost));
  mkdirSync(typo);
  const empty = await run(process.execPath, [binaryEntry('fleetctl'), 'device', 'list', '--data-dir', typo]).catch((e: { code: number; stderr: string }) => e);
  assert.ok('code' in empty && empty.code === 4 && /No device registry at .*typo/.test(empty.stderr), JSON.stringify(empty));
  assert.ok(!existsSync(join(typo, 'fleet.sqlite')));

  const server = spawn(process.execPath, [binaryEntry('fleet-server'), 'serve', '--config', config, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  t.after(() => { if (server.exitCode === null) server.kill('SIGKILL'); });
  const ready = JSON.parse(await waitFor('serve ready line', () => out.split('\n').find((l) => l.startsWith('{')), 20_000)) as { http: number; mqtt: number };
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${ready.mqtt}`, { username: dev.id, password: dev.secret, protocolVersion: 4, reconnectPeriod: 0 });
  await c.publishAsync('ef/v1/dev/cam-cli/state', JSON.stringify({ v: 1, online: true, ts: Date.now(), agentVersion: '9.9.9' }), { qos: 1, retain: true });
  await c.endAsync();
  const login = await fetch(`http://127.0.0.1:${ready.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'cli-test-password' }) });
  const { token } = (await login.json()) as { token: string };
  const list = await run(process.execPath, [binaryEntry('fleetctl'), 'device', 'list', '--server', `http://127.0.0.1:${ready.http}`, '--token', token, '--json']);
  const items = (JSON.parse(list.stdout) as { items: { id: string; online: boolean; agentVersion: string }[] }).items;
  assert.deepEqual(items.map((d) => [d.id, d.online, d.agentVersion]), [['cam-cli', true, '9.9.9']]);
  // A lost or leaked operator password is replaced from the command line (operator.password in the
  // config is read on the first start only); the operator's sessions end.
  const changed = JSON.parse((await run(process.execPath, [binaryEntry('fleetctl'), 'operator', 'password', '--config', config, '--json'])).stdout) as { password: string; sessionsEnded: number; created: boolean };
  assert.equal(changed.created, false);
  assert.ok(changed.sessionsEnded >= 1);
  assert.equal((await fetch(`http://127.0.0.1:${ready.http}/api/devices`, { headers: { authorization: `Bearer ${token}` } })).status, 401, 'the old session ended');
  const relogin = (password: string) => fetch(`http://127.0.0.1:${ready.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
  assert.equal((await relogin('cli-test-password')).status, 401);
  assert.equal((await relogin(changed.password)).status, 200);
  // SIGHUP (a stray kill -HUP, an old unit's ExecReload) is not a stop: its default action ended the server.
  server.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(server.exitCode, null, 'still running after SIGHUP');
  assert.equal((await fetch(`http://127.0.0.1:${ready.http}/api/health`)).status, 200);
  server.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('fleet-server serve names the config field at fault: a missing TLS file, a port in use, a bad --http-port', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-serve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const serve = (args: string[]) => run(process.execPath, [binaryEntry('fleet-server'), 'serve', ...args]).catch((e: { code: number; stderr: string }) => e);
  const tlsConfig = join(dir, 'tls.json');
  writeFileSync(tlsConfig, JSON.stringify({ dataDir: join(dir, 'a'), broker: { embedded: { host: '127.0.0.1', port: 0, tls: { port: 0, certPath: join(dir, 'none.pem'), keyPath: join(dir, 'none.key') } } }, http: { port: 0 }, operator: { password: 'serve-test-password' } }));
  const tls = await serve(['--config', tlsConfig]);
  assert.ok('code' in tls && tls.code === 3 && /\/broker\/embedded\/tls\/certPath: expected an existing PEM file/.test(tls.stderr), JSON.stringify(tls));
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const busy = await serve(['--data-dir', join(dir, 'b'), '--http-port', String(port), '--mqtt-port', '0']);
  assert.ok('code' in busy && busy.code === 3 && new RegExp(`/http/port ${port} is in use by another program`).test(busy.stderr), JSON.stringify(busy));
  const bad = await serve(['--data-dir', join(dir, 'c'), '--http-port', 'abc']);
  assert.ok('code' in bad && bad.code === 2 && /Expected --http-port to be a TCP port/.test(bad.stderr), JSON.stringify(bad));
});
