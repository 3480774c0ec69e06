/**
 * Behind a reverse proxy every login came from the proxy's address, so one guesser (one wrong login
 * every 10 s) kept the per-address login limit full and every operator got 429, even fleetctl or curl
 * on the server's own host: there was no way in. Now http.trustProxy names the proxy and each client
 * is counted by its own address (X-Forwarded-For), and a login on the server's host straight to its
 * port (loopback, no proxy header) is counted apart from the proxy's clients. Fake clock, real fastify
 * on port 0, real SQLite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testHttpApi } from '../helpers/http-api.js';
import { LoginThrottle } from '../../fleet-server/src/api/login-throttle.js';

const GUESSER = '203.0.113.66';
const OPERATOR = '198.51.100.7';

/** An API with the default limits on a fake clock; `login` posts with the given extra headers. */
async function apiWith(trustProxy: string[] | undefined, t: { after: (fn: () => Promise<void>) => void }) {
  let now = 1_000_000;
  const { db, operators, api } = testHttpApi({
    trustProxy, loginThrottle: new LoginThrottle({ now: () => now }), addressThrottle: new LoginThrottle({ maxFailures: 30, now: () => now }),
  });
  operators.setPassword('admin', 'a-long-password');
  await api.start();
  t.after(async () => { await api.stop(); db.close(); });
  const login = async (username: string, password: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${api.port}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password }) });
    const j = await r.json() as { error?: { code: string; message: string } };
    return { status: r.status, message: j.error?.message ?? '' };
  };
  /** A guesser behind the proxy, one wrong login every 10 s for `minutes`; `each` runs every minute, 35 s in. */
  const guessFor = async (minutes: number, each: () => Promise<void>) => {
    const t0 = now;
    for (let s = 0; s < minutes * 60; s += 5) {
      now = t0 + s * 1000;
      if (s % 10 === 0) await login(`guess-${s}`, 'wrong', { 'x-forwarded-for': GUESSER, 'x-forwarded-proto': 'https' });
      if (s % 60 === 35) await each();
    }
  };
  return { login, guessFor };
}

test('without trustProxy: a guesser behind the proxy locks out its clients, not a login on the server\'s host; the 429 says why and what to set', { timeout: 20_000 }, async (t) => {
  const { login, guessFor } = await apiWith(undefined, t);
  const local: number[] = [];
  let proxied = { status: 0, message: '' };
  await guessFor(6, async () => {
    local.push((await login('admin', 'a-long-password')).status);
    proxied = await login('admin', 'a-long-password', { 'x-forwarded-for': OPERATOR, 'x-forwarded-proto': 'https' });
  });
  assert.deepEqual(local, Array(6).fill(200), 'fleetctl or curl on the box logs in every minute');
  assert.equal(proxied.status, 429, 'through the untrusted proxy the operator shares the guesser\'s address');
  assert.match(proxied.message, /from 127\.0\.0\.1, whatever the username \(30 within 5 min\)/);
  assert.match(proxied.message, /later while failures keep coming/);
  assert.match(proxied.message, /http\.trustProxy/);
  t.diagnostic(proxied.message);
});

test('with trustProxy: each client behind the proxy is counted on its own, the guesser is refused', { timeout: 20_000 }, async (t) => {
  const { login, guessFor } = await apiWith(['127.0.0.1'], t);
  const operator: number[] = [];
  await guessFor(6, async () => { operator.push((await login('admin', 'a-long-password', { 'x-forwarded-for': OPERATOR })).status); });
  assert.deepEqual(operator, Array(6).fill(200));
  const guesser = await login('admin', 'a-long-password', { 'x-forwarded-for': GUESSER });
  assert.equal(guesser.status, 429, 'the guesser\'s own address is full, even with the right password');
  assert.match(guesser.message, new RegExp(`from ${GUESSER.replace(/\./g, '\\.')}, whatever the username`));
  assert.doesNotMatch(guesser.message, /trustProxy/);
  // A login on the server's host, not through the proxy, is counted apart from the proxy's clients.
  assert.equal((await login('admin', 'a-long-password')).status, 200);
});

test('a trustProxy entry that is not an address is refused at start, naming the setting', async () => {
  const { db, api } = testHttpApi({ trustProxy: ['10.0.0.300'] });
  try {
    await assert.rejects(api.start(), (err: Error & { code?: string }) => err.code === 'E_CONFIG' && /http\.trustProxy/.test(err.message));
  } finally {
    await api.stop();
    db.close();
  }
});
