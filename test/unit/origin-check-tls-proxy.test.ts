/**
 * Behind a TLS proxy that sends no X-Forwarded-Proto (Apache's ProxyPass, HAProxy, by default) the
 * browser's Origin is https://H while the server sees http: every dashboard action was refused
 * (403 E_CROSS_ORIGIN) after the origin check came in. An https Origin for the host the server sees
 * now passes when no X-Forwarded-Proto was sent; other hosts and ports are still refused, and so is
 * an http Origin when the proxy says https. Real fastify on port 0, real SQLite.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { testHttpApi } from '../helpers/http-api.js';

const { db, operators, devices, api } = testHttpApi();
let token = '';

before(async () => {
  await api.start();
  operators.setPassword('admin', 'a-long-password');
  token = (await operators.login('admin', 'a-long-password', 3600_000))!.token;
});
after(async () => {
  await api.stop();
  db.close();
});

let n = 0;
/** POST /api/devices with the session cookie and `headers` (Host included); its status and error code. */
function addDevice(headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  const body = JSON.stringify({ id: `cam-${String(++n).padStart(2, '0')}` });
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: api.port, method: 'POST', path: '/api/devices', headers: { cookie: `ef_session=${token}`, 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a TLS proxy that sends no X-Forwarded-Proto: the https Origin of the host the server sees is its own', async () => {
  // Apache ProxyPass: Host rewritten, X-Forwarded-Host set, no X-Forwarded-Proto.
  assert.equal((await addDevice({ host: '127.0.0.1:8080', 'x-forwarded-host': 'fleet.example.com', origin: 'https://fleet.example.com' })).status, 201);
  // HAProxy: Host kept, nothing forwarded.
  assert.equal((await addDevice({ host: 'fleet.example.com', origin: 'https://fleet.example.com' })).status, 201);
  assert.equal((await addDevice({ host: 'fleet.example.com:8443', origin: 'https://fleet.example.com:8443' })).status, 201);
  // A plain-http dashboard is untouched.
  assert.equal((await addDevice({ host: 'fleet.example.com', origin: 'http://fleet.example.com' })).status, 201);
  assert.equal(devices.list().length, 4);
});

test('other hosts and ports are still refused, and an http Origin where the proxy says https', async () => {
  const refused: Record<string, string>[] = [
    { host: 'fleet.example.com', origin: 'https://evil.example.com' },
    { host: 'fleet.example.com', origin: 'https://fleet.example.com:8443' },
    { host: 'fleet.example.com:8443', origin: 'https://fleet.example.com' },
    { host: 'fleet.example.com', origin: 'https://sub.fleet.example.com' },
    // nginx's default Host ($proxy_host) and no X-Forwarded-Host: the public host is unknown (http.allowedOrigins).
    { host: '127.0.0.1:8080', origin: 'https://fleet.example.com' },
    { host: 'fleet.example.com', 'x-forwarded-proto': 'https', origin: 'http://fleet.example.com' },
  ];
  const before = devices.list().length;
  for (const h of refused) {
    const r = await addDevice(h);
    assert.deepEqual(r, { status: 403, code: 'E_CROSS_ORIGIN' }, JSON.stringify(h));
  }
  assert.equal(devices.list().length, before, 'nothing added');
});
