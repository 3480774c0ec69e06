/**
 * The HTTP API refuses (403 E_CROSS_ORIGIN) a POST/PUT/DELETE carried by the dashboard's session
 * cookie from a page of another origin: SameSite=Strict keeps the cookie from other sites, not from
 * another port or subdomain of the same site. The dashboard's own calls (same Origin, or no Origin
 * and a same-origin Referer), requests behind a proxy (X-Forwarded-Host/-Proto, http.allowedOrigins),
 * bearer-token calls without cookies (fleetctl) and reads still pass. Real fastify on port 0, real SQLite.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { testHttpApi } from '../helpers/http-api.js';

const { db, operators, devices, api } = testHttpApi({ allowedOrigins: ['https://fleet.example.com'] });
let token = '';
let self = '';

before(async () => {
  await api.start();
  self = `http://127.0.0.1:${api.port}`;
  operators.setPassword('admin', 'a-long-password');
  token = (await operators.login('admin', 'a-long-password', 3600_000))!.token;
});
after(async () => {
  await api.stop();
  db.close();
});

function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: { error?: { code: string; message: string } } }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: api.port, method, path, headers: { ...headers, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) as { error?: { code: string; message: string } } : {} }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

let n = 0;
const addDevice = (headers: Record<string, string>) => call('POST', '/api/devices', headers, { id: `cam-${String(++n).padStart(2, '0')}` });
const cookie = () => ({ cookie: `theme=dark; ef_session=${token}` });

test('a cookie POST or DELETE from another origin (another port of the same host, a subdomain) is refused, and changes nothing', async () => {
  for (const origin of ['http://127.0.0.1:1', 'http://evil.127.0.0.1.nip.io', 'null']) {
    const r = await addDevice({ ...cookie(), origin });
    assert.equal(r.status, 403, origin);
    assert.equal(r.json.error?.code, 'E_CROSS_ORIGIN');
    assert.match(r.json.error?.message ?? '', origin === 'null' ? /Origin: null/ : new RegExp(`came from the page at ${origin.replace(/\./g, '\\.')}, not from this server \\(${self.replace(/\./g, '\\.')}`));
  }
  const referred = await addDevice({ ...cookie(), referer: 'http://127.0.0.1:1/attack.html' });
  assert.equal(referred.status, 403);
  const neither = await addDevice(cookie());
  assert.equal(neither.status, 403);
  assert.match(neither.json.error?.message ?? '', /neither Origin nor Referer/);
  assert.deepEqual(devices.list(), [], 'nothing added');

  devices.add('keep-me');
  const del = await call('DELETE', '/api/devices/keep-me', { ...cookie(), origin: 'http://127.0.0.1:1' });
  assert.equal(del.status, 403);
  assert.ok(devices.get('keep-me'), 'not removed');
  const logout = await call('POST', '/api/logout', { ...cookie(), origin: 'http://127.0.0.1:1' }, {});
  assert.equal(logout.status, 403);
  assert.equal(operators.authenticate(token), 'admin', 'the session was not ended from another origin');
});

test('the dashboard (same Origin, or no Origin and a same-origin Referer), a proxy and fleetctl still pass; reads are untouched', async () => {
  assert.equal((await addDevice({ ...cookie(), origin: self })).status, 201);
  assert.equal((await addDevice({ ...cookie(), referer: `${self}/#/devices` })).status, 201);
  // Behind a proxy that passes the public host and scheme on.
  assert.equal((await addDevice({ ...cookie(), origin: 'https://fleet.corp.example', 'x-forwarded-host': 'fleet.corp.example', 'x-forwarded-proto': 'https' })).status, 201);
  // Behind one that rewrites Host, with the public address in http.allowedOrigins.
  assert.equal((await addDevice({ ...cookie(), origin: 'https://fleet.example.com' })).status, 201);
  // fleetctl: a bearer token, no cookie, no Origin.
  assert.equal((await addDevice({ authorization: `Bearer ${token}` })).status, 201);
  // A read with the cookie from anywhere is left to SameSite and CORS (nothing changes).
  assert.equal((await call('GET', '/api/devices', { ...cookie(), origin: 'http://127.0.0.1:1' })).status, 200);
  // No session cookie: nothing ambient to abuse, and the auth check answers.
  assert.equal((await addDevice({ origin: 'http://127.0.0.1:1' })).status, 401);
  assert.equal(devices.list().filter((d) => d.id.startsWith('cam-')).length, 5);
});
