/**
 * The dashboard's server side without a browser: the session cookie from /api/login opens the
 * server-sent event stream; stored alerts, telemetry and state changes arrive as events; the
 * device summary joins telemetry and groups; stopping the server ends open streams (no hang);
 * a server without the static files still serves the API and says what is missing at `/`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { alertFixture, startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { FleetEventBus } from '../../fleet-server/src/dashboard/event-bus.js';
import { Dashboard } from '../../fleet-server/src/dashboard/dashboard.js';
import { sessionFromCookie } from '../../fleet-server/src/dashboard/session-cookie.js';
import type { TelemetryPayload } from '../../agent/src/protocol/index.js';

let fleet: TestFleet | undefined;
after(async () => { await fleet?.stop(); });

interface Sse { event: string; data: Record<string, unknown> }

/** Reads an SSE body into parsed events (HTML Living Standard §9.2.6 field parsing, enough for ours). */
function collect(body: ReadableStream<Uint8Array>): { events: Sse[]; done: Promise<void> } {
  const events: Sse[] = [];
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const done = (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      buf += r.value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        if (fields.event && fields.data) events.push({ event: fields.event, data: JSON.parse(fields.data) });
      }
    }
  })();
  return { events, done };
}

function telemetry(): TelemetryPayload {
  return {
    v: 1, ts: Date.now(), intervalMs: 1000, uptimeS: 1, frames: { in: 10, processed: 10, dropped: {} }, detectFps: 9.5,
    stages: { infer: { count: 10, p50Ms: 20, p95Ms: 31, p99Ms: 40 }, total: { count: 10, p50Ms: 30, p95Ms: 47, p99Ms: 60 } },
    eventLoop: { p50Ms: 1, p99Ms: 2, maxMs: 3 }, cpu: { processPercent: 10, load1: 0.5 },
    memory: { rssBytes: 1, heapUsedBytes: 1, systemFreeBytes: 1, systemTotalBytes: 2 }, models: { detector: '2.0.0' },
    drift: { baselineReady: true, threshold: 0.25, flagged: true, psi: { brightness: 0.4 }, flags: ['brightness'], current: { confidenceHistogram: [], classMix: {} } },
    outbox: { pending: 0, dropped: 0 },
  };
}

test('session cookie opens /api/events; alerts, telemetry and state arrive live; stop ends the stream', async () => {
  fleet = await startFleet({ broker: 'aedes' });
  const f = fleet;
  const dev = f.addDevice('demo-01');
  f.server.ota.rolloutStore.setGroups(dev.id, ['site-a', 'north']);
  const login = await fetch(`${f.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-operator-password' }) });
  assert.equal(login.status, 200);
  const setCookie = login.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^ef_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const cookie = setCookie.split(';')[0];
  assert.equal(sessionFromCookie(`a=b; ${cookie}`), cookie.slice('ef_session='.length));

  const res = await fetch(`${f.httpUrl}/api/events`, { headers: { cookie } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const stream = collect(res.body!);
  await waitFor('hello event', () => stream.events.some((e) => e.event === 'hello'));

  const link = f.agentLink(dev);
  link.start();
  await link.waitConnected();
  await waitFor('online state event', () => stream.events.some((e) => e.event === 'device' && e.data.deviceId === 'demo-01'));
  link.publishTelemetry(telemetry());
  const tel = await waitFor('telemetry event', () => stream.events.find((e) => e.event === 'telemetry'));
  assert.deepEqual({ fps: tel.data.detectFps, p95: tel.data.p95Ms, drift: tel.data.driftFlagged }, { fps: 9.5, p95: 47, drift: true });
  link.publishAlert(alertFixture('ev-1'));
  const al = await waitFor('alert event', () => stream.events.find((e) => e.event === 'alert'));
  assert.deepEqual({ id: al.data.id, rule: al.data.rule, cls: al.data.class }, { id: 'ev-1', rule: 'zone-door', cls: 'person' });

  const summary = await f.api<{ items: Array<Record<string, unknown>> }>('GET', '/api/dashboard/devices');
  const d = summary.body.items.find((x) => x.id === 'demo-01')!;
  assert.deepEqual({ groups: d.groups, fps: d.detectFps, p95: d.p95Ms, drift: d.driftFlagged, alertsLast24h: d.alertsLast24h, models: d.models },
    { groups: ['north', 'site-a'], fps: 9.5, p95: 47, drift: true, alertsLast24h: 1, models: { detector: '2.0.0' } });

  const status = await f.api<{ events: { clients: number; sent: number; dropped: number } }>('GET', '/api/dashboard/status');
  assert.equal(status.body.events.clients, 1);
  assert.equal(status.body.events.dropped, 0);

  // Logout clears the cookie and the session. A browser sends its page's Origin with the cookie: a
  // POST with the cookie and neither Origin nor Referer is refused as possibly cross-origin.
  const out = await fetch(`${f.httpUrl}/api/logout`, { method: 'POST', headers: { cookie, origin: f.httpUrl } });
  assert.match(out.headers.get('set-cookie') ?? '', /^ef_session=; .*Max-Age=0/);
  assert.equal((await fetch(`${f.httpUrl}/api/devices`, { headers: { cookie } })).status, 401);
  // ...and the stream opened with it: it ends at the next event instead of delivering it.
  const seen = stream.events.length;
  link.publishAlert(alertFixture('after-logout'));
  await Promise.race([stream.done, new Promise((_r, rej) => setTimeout(() => rej(new Error('stream still open after logout')), 5000))]);
  assert.equal(stream.events.length, seen, 'nothing delivered after logout');
  await waitFor('the alert is still stored', () => f.server.alerts.get('demo-01', 'after-logout'));

  // A server stop ends an open stream (no hang).
  const relogin = await fetch(`${f.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-operator-password' }) });
  const { token } = (await relogin.json()) as { token: string };
  const res2 = await fetch(`${f.httpUrl}/api/events`, { headers: { authorization: `Bearer ${token}` } });
  const stream2 = collect(res2.body!);
  await waitFor('hello event', () => stream2.events.some((e) => e.event === 'hello'));
  const t0 = Date.now();
  await f.stop();
  fleet = undefined;
  await Promise.race([stream2.done, new Promise((_r, rej) => setTimeout(() => rej(new Error('stream still open after stop')), 5000))]);
  console.log(`dashboard-events: ${stream.events.length} events; server stop with an open stream took ${Date.now() - t0} ms`);
});

test('without its static files the dashboard answers / with what is missing instead of failing the server start', async () => {
  const app = Fastify();
  const db = undefined as never;
  const dash = new Dashboard({ bus: new FleetEventBus(), devices: db, telemetry: db, alerts: db, publicDir: '/nonexistent/ef-dashboard' });
  dash.registerPublic(app);
  const r = await app.inject({ method: 'GET', url: '/' });
  assert.equal(r.statusCode, 503);
  assert.match(r.json().error.message, /EF_DASHBOARD_DIR/);
  await app.close();
});

test('operator login: ten failures from one address, then 429 with Retry-After, even for the right password', async () => {
  const f = await startFleet({ broker: 'aedes' });
  try {
    const login = (password: string) => fetch(`${f.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    for (let i = 0; i < 10; i++) assert.equal((await login(`guess-${i}`)).status, 401);
    const limited = await login('test-operator-password');
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.equal((await fetch(`${f.httpUrl}/api/health`)).status, 200);
  } finally {
    await f.stop();
  }
});
