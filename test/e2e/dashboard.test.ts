/**
 * The operator dashboard in a real browser (Debian's chromium, driven by playwright-core): login,
 * the demo device online, an alert with its redacted snapshot arriving live (no reload), pages on a
 * laptop and a phone screen (screenshots in test-artifacts/dashboard/), a rollout started from the
 * page, and the refusals (wrong password, API without a session).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { alertFixture, startFleet, type TestDevice, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, chromiumSkip } from '../helpers/chromium.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { startOtaAgent, type OtaTestAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import type { TelemetryPayload } from '../../agent/src/protocol/index.js';

const ARTIFACTS = 'test-artifacts/dashboard';
const PASSWORD = 'test-operator-password';

const skip = chromiumSkip;
let fleet: TestFleet | undefined;
let ctx: BrowserContext | undefined;
let dev: TestDevice;
let agent: OtaTestAgent;
const profile = mkdtempSync(join(tmpdir(), 'ef-chromium-'));

before(async () => {
  if (skip) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  fleet = await startFleet({ broker: 'aedes' });
  dev = fleet.addDevice('demo-01');
  fleet.server.ota.rolloutStore.setGroups(dev.id, ['site-lisbon']);
  // The real OTA installer (chunks, signature, swap, health window) on a light stand-in model.
  const ota = fleet.server.ota;
  for (const version of ['1.0.0', '1.1.0']) {
    // Metrics as `fleetctl model evaluate` would record them (fixture figures: the page shows what the manifest says).
    const metrics = version === '1.1.0' ? { mAP50: 0.612, mapDrop: 0.004, evalFrames: 200 } : undefined;
    await publishModelDir(ota.registry, ota.key.privateKey, { dir: writeStandIn(join(fleet.dir, 'models', version), { name: 'standin', version }), metrics });
  }
  agent = await startOtaAgent(fleet, dev, { factoryDir: join(fleet.dir, 'models', '1.0.0'), factoryVersion: '1.0.0', gate: { minFrames: 5 } });
  ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1366, height: 860 } });
});

after(async () => {
  await ctx?.close();
  await agent?.stop();
  await fleet?.stop();
  rmSync(profile, { recursive: true, force: true });
});

function telemetry(i: number): TelemetryPayload {
  const mb = 1024 * 1024;
  return {
    v: 1, ts: Date.now() - (10 - i) * 1000, intervalMs: 1000, uptimeS: i, frames: { in: 25 * i, processed: 25 * i, dropped: {} },
    detectFps: 11 + (i % 3), stages: { infer: { count: 10 * i, p50Ms: 30, p95Ms: 38 + i, p99Ms: 50 }, total: { count: 10 * i, p50Ms: 40, p95Ms: 55 + i, p99Ms: 70 } },
    eventLoop: { p50Ms: 1, p99Ms: 4, maxMs: 9 }, cpu: { processPercent: 60, load1: 1.2 },
    memory: { rssBytes: 200 * mb, heapUsedBytes: 80 * mb, systemFreeBytes: 2000 * mb, systemTotalBytes: 8000 * mb },
    models: {},
    drift: { baselineReady: true, threshold: 0.25, flagged: false, psi: { brightness: 0.02 * i, contrast: 0.01 * i, confidence: 0.03 }, flags: [], current: { confidenceHistogram: [1, 2, 3], classMix: { person: 1 } } },
    outbox: { pending: 0, dropped: 0 },
  };
}

/** A small JPEG standing in for a redacted snapshot (the agent's privacy gate marks it redacted). */
async function snapshotJpeg(): Promise<string> {
  const buf = await sharp({ create: { width: 160, height: 120, channels: 3, background: { r: 90, g: 120, b: 160 } } })
    .composite([{ input: Buffer.from('<svg width="160" height="120"><rect x="60" y="20" width="40" height="90" fill="#ddd"/><rect x="66" y="22" width="28" height="26" fill="#777"/></svg>'), top: 0, left: 0 }])
    .jpeg({ quality: 70 }).toBuffer();
  return buf.toString('base64');
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

test('dashboard: login, devices, live alert with snapshot, pages on laptop and phone', { skip, timeout: 60_000 }, async () => {
  const f = fleet!;
  for (let i = 1; i <= 8; i++) agent.link.publishTelemetry(telemetry(i));
  await waitFor('telemetry stored', () => f.server.telemetry.count(dev.id) >= 8);
  const page = await ctx!.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => { pageErrors.push(err.message); });
  // 401s before the login are expected network errors, not script errors.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
  page.setDefaultTimeout(15_000);
  try {
    await walkPages(f, page);
  } catch (err) {
    await shot(page, 'failure').catch(() => undefined);
    throw new Error(`${(err as Error).message}\npage errors: ${pageErrors.join(' | ') || 'none'}`, { cause: err });
  }
  assert.deepEqual(pageErrors, [], 'no script errors in the page');
  await page.close();
});

async function walkPages(f: TestFleet, page: Page): Promise<void> {
  const t0 = Date.now();
  await page.goto(f.httpUrl);

  // Wrong password first: refused, still on the login form.
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  await shot(page, '00-login-refused');

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  const row = page.locator('tr[data-device="demo-01"]');
  await row.getByText('online').waitFor();
  await page.getByText('live', { exact: true }).waitFor();
  const cookies = await ctx!.cookies(f.httpUrl);
  const session = cookies.find((c) => c.name === 'ef_session');
  assert.ok(session, 'login set the session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.match(await row.textContent() ?? '', /detector 1\.0\.0/);
  assert.match(await row.textContent() ?? '', /site-lisbon/);
  await shot(page, '01-devices');
  console.log(`login → demo-01 online in the table: ${Date.now() - t0} ms`);

  // An alert raised now appears in the open feed without a reload, with its snapshot.
  await page.getByRole('link', { name: 'Alerts' }).click();
  await page.getByRole('feed', { name: 'Alerts' }).waitFor();
  const raisedAt = Date.now();
  agent.link.publishAlert({ ...alertFixture('dash-a1'), snapshot: { contentType: 'image/jpeg', redacted: true, width: 160, height: 120, dataBase64: await snapshotJpeg() } });
  const card = page.locator('[data-alert="dash-a1"]');
  await card.waitFor({ timeout: 10_000 });
  const img = card.getByRole('img', { name: /Redacted snapshot/ });
  await waitFor('snapshot decoded', () => img.evaluate((el) => (el as { naturalWidth: number }).naturalWidth === 160), 10_000);
  console.log(`alert published → card with snapshot in the open page: ${Date.now() - raisedAt} ms`);
  await shot(page, '02-alerts');

  // Device page: charts, recent alert, models.
  await page.goto(`${f.httpUrl}/#/devices/demo-01`);
  await page.getByRole('img', { name: /Detection fps/ }).waitFor();
  await page.locator('[data-alert="dash-a1"]').waitFor();
  assert.match(await page.locator('#device-models').textContent() ?? '', /detector 1\.0\.0/);
  await shot(page, '03-device');

  await page.goto(`${f.httpUrl}/#/models`);
  const artifacts = page.getByRole('table', { name: 'Artifacts of standin 1.1.0' });
  await artifacts.getByText('onnx-cpu').waitFor();
  assert.match(await artifacts.textContent() ?? '', /fp32.*B.*mAP50 0\.612/);
  await shot(page, '04-models');

  // A rollout started from the page reaches 100 % and the device shows the new version.
  await page.getByRole('link', { name: 'Rollouts' }).click();
  await page.getByLabel('Model version').selectOption('standin@1.1.0');
  await page.getByLabel('Devices', { exact: true }).fill('all');
  await page.getByLabel('Waves (cumulative %)').fill('50,100');
  await page.getByLabel('Health window (s)').fill('0.5');
  const startedAt = Date.now();
  await page.getByRole('button', { name: 'Start rollout' }).click();
  const bar = page.getByRole('progressbar', { name: 'Progress of standin 1.1.0' });
  await bar.waitFor();
  await shot(page, '05-rollout-running');
  await page.locator('[data-rollout] [data-state="completed"]').waitFor({ timeout: 30_000 });
  assert.equal(await bar.getAttribute('aria-valuenow'), '100');
  console.log(`rollout from the page → 100 %: ${Date.now() - startedAt} ms`);
  await shot(page, '05-rollout-done');
  await page.getByRole('link', { name: 'Devices' }).click();
  await row.getByText('detector 1.1.0').waitFor();
  await page.goto(`${f.httpUrl}/#/devices/demo-01`);
  await page.locator('#device-previous').getByText('detector 1.0.0').waitFor();
  await shot(page, '03-device-after-rollout');

  // Roll back from the page: the device returns to the previous version.
  await page.getByRole('link', { name: 'Rollouts' }).click();
  await page.getByRole('button', { name: 'Roll back rollout standin 1.1.0' }).click();
  await page.locator('[data-rollout] [data-state="rolled-back"]').waitFor({ timeout: 30_000 });
  await page.getByRole('link', { name: 'Devices' }).click();
  await row.getByText('detector 1.0.0').waitFor({ timeout: 30_000 });
  console.log(`rollout: 100 % then rolled back from the page: ${Date.now() - startedAt} ms`);

  // Phone screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const phonePages: [string, string, string][] = [
    ['#/devices', '06-phone-devices', 'tr[data-device="demo-01"]'], ['#/alerts', '07-phone-alerts', '[data-alert="dash-a1"] img'],
    ['#/devices/demo-01', '08-phone-device', '[data-alert="dash-a1"] img'], ['#/models', '09-phone-models', 'table td'], ['#/rollouts', '10-phone-rollouts', '[data-rollout] tbody tr'],
  ];
  for (const [hash, name, ready] of phonePages) {
    await page.goto(`${f.httpUrl}/${hash}`);
    await page.locator(ready).first().waitFor();
    await shot(page, name);
    const overflow = await page.evaluate(() => {
      const el = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
      return { scrollWidth: el.scrollWidth, clientWidth: el.clientWidth };
    });
    assert.ok(overflow.scrollWidth <= overflow.clientWidth + 1, `${hash}: no sideways scrolling on a phone (${overflow.scrollWidth} > ${overflow.clientWidth})`);
  }

  // Log out: back to the login form, and the old cookie no longer opens the API.
  const before = (await ctx!.cookies(f.httpUrl)).find((c) => c.name === 'ef_session')!.value;
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.equal((await fetch(`${f.httpUrl}/api/devices`, { headers: { cookie: `ef_session=${before}` } })).status, 401);
}

test('dashboard: API refuses calls without a session; wrong password refused', { skip }, async () => {
  const f = fleet!;
  for (const path of ['/api/devices', '/api/events', '/api/dashboard/devices', '/api/alerts']) {
    const r = await fetch(`${f.httpUrl}${path}`);
    assert.equal(r.status, 401, path);
    await r.body?.cancel();
  }
  const bad = await fetch(`${f.httpUrl}/api/devices`, { headers: { cookie: 'ef_session=forged-token' } });
  assert.equal(bad.status, 401);
  const wrong = await fetch(`${f.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'nope' }) });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null, 'no cookie for a refused login');
  // The static page itself is public (it is the login form) and locked down by its CSP.
  const index = await fetch(f.httpUrl);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const traversal = await fetch(`${f.httpUrl}/ui/..%2f..%2fpackage.json`);
  assert.equal(traversal.status, 404);
  await traversal.body?.cancel();
});
