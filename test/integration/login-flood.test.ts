/**
 * A flood of operator logins from one address, each with another username: limited per address
 * (429 with Retry-After) and by the password checks at once (503), so the scrypt hashes it costs
 * never fill libuv's thread pool, where a device's CONNECT checks its secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { LoginSlots } from '../../fleet-server/src/api/login-slots.js';
import { LoginThrottle, addressKey } from '../../fleet-server/src/api/login-throttle.js';

test('login slots: a bounded number run, a bounded number wait, the rest are refused at once', async () => {
  const slots = new LoginSlots({ concurrent: 2, waiting: 1 });
  const gates: (() => void)[] = [];
  const check = () => new Promise<string>((resolve) => gates.push(() => resolve('done')));
  const runs = [slots.run(check), slots.run(check), slots.run(check), slots.run(check)];
  assert.ok(runs[0] && runs[1] && runs[2], 'two run and one waits');
  assert.equal(runs[3], undefined, 'the fourth is refused');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(slots.load, { running: 2, waiting: 1 });
  gates.shift()!();
  assert.equal(await runs[0], 'done');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(slots.load, { running: 2, waiting: 0 }, 'the waiting one took the freed slot');
  for (const g of gates.splice(0)) g();
  await Promise.all(runs);
  assert.deepEqual(slots.load, { running: 0, waiting: 0 });
});

test('per-address key: IPv4 as it is, IPv6 by its /64; a forgiven try no longer counts', () => {
  assert.equal(addressKey('10.0.0.7'), '10.0.0.7');
  assert.equal(addressKey('::ffff:10.0.0.7'), '10.0.0.7');
  assert.equal(addressKey('2001:db8:1:2::9'), addressKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'));
  assert.notEqual(addressKey('2001:db8:1:2::9'), addressKey('2001:db8:1:3::9'));
  const th = new LoginThrottle({ maxFailures: 2, now: () => 0 });
  th.failed('a');
  th.failed('a');
  assert.ok(th.retryAfterMs('a') > 0);
  th.forgive('a');
  assert.equal(th.retryAfterMs('a'), 0);
});

test('a login flood from one address cycling usernames gets 429s, and a device still connects at once', { timeout: 60_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-flood');
  const connectMs = async () => {
    const t0 = performance.now();
    const c = await mqtt.connectAsync(fleet.mqttUrl, { username: dev.id, password: dev.secret, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000 });
    await c.endAsync(true);
    return performance.now() - t0;
  };
  await connectMs();
  // Before the per-address limit and the bound on checks at once, 400 logins like these queued 400
  // scrypt hashes ahead of the device's PBKDF2: its CONNECT took 6 to 10 s.
  const N = 400;
  const statuses: number[] = [];
  let retryAfter = 0;
  const login = async (username: string) => {
    const r = await fetch(`${fleet.httpUrl}/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'x' }),
    });
    statuses.push(r.status);
    if (r.status === 429) retryAfter = Number(r.headers.get('retry-after'));
    await r.arrayBuffer();
  };
  const flood = Promise.all(Array.from({ length: N }, (_, i) => login(`guess-${i}`)));
  // Once answers come, the flood is at the server (hashing, before the fix).
  await waitFor('the first answers', () => statuses.length >= 20, 20_000);
  const duringMs = await connectMs();
  await flood;
  // Most of a burst is refused unhashed (503); what keeps coming from the address meets its limit.
  for (let i = 0; i < 31; i++) await login(`more-${i}`);
  const count = (s: number) => statuses.filter((x) => x === s).length;
  t.diagnostic(`device CONNECT during the flood: ${duringMs.toFixed(0)} ms; 401: ${count(401)}, 429: ${count(429)}, 503: ${count(503)}`);
  assert.ok(duringMs < 2000, `device CONNECT took ${duringMs.toFixed(0)} ms during the flood`);
  assert.equal(count(401) + count(429) + count(503), N + 31, 'every login is answered 401, 429 or 503');
  assert.equal(count(401), 30, 'passwords checked for one address: 30');
  assert.equal(statuses.at(-1), 429);
  assert.ok(retryAfter > 0, '429 with Retry-After');
  // The limit is per address: the right password from the flooding address waits too.
  const again = await fetch(`${fleet.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-operator-password' }) });
  assert.equal(again.status, 429);
});
