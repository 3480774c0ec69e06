/**
 * The dashboard's pages when things go wrong, in a real browser (Debian's chromium through
 * playwright-core): a stored alert whose time is out of a Date's range, tabs left open in the
 * background, a refused rollout action, and a live stream the server ends or refuses. Each test has
 * its own browser context (its own cookies and its own per-host connection pool).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { alertFixture, startFleet, OPERATOR_PASSWORD, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, chromiumSkip } from '../helpers/chromium.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';

/**
 * Waits until `expr` is true in the page. page.waitForFunction would poll it by compiling the string
 * inside the page, which the dashboard's CSP (script-src 'self') refuses once the first look is false;
 * page.evaluate runs it through the debugger protocol, which the CSP does not govern.
 */
const pageHas = (page: Page, expr: string): Promise<true> => waitFor(expr, async () => (await page.evaluate(expr)) === true || undefined);

const skip = chromiumSkip;

let fleet: TestFleet;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({ broker: 'aedes' });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

/** A page that records script errors (uncaught exceptions and unhandled rejections) and console errors. */
async function openPage(ctx: BrowserContext): Promise<{ page: Page; errors: string[] }> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => { errors.push(err.message); });
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  return { page, errors };
}

async function login(page: Page, hash = '#/devices'): Promise<void> {
  await page.goto(`${fleet.httpUrl}/${hash}`);
  await page.getByLabel('Password').fill(OPERATOR_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#top:not([hidden])').waitFor();
}

/** Stores an alert and announces it, as ingest does, whatever its time (ingest may bound it; the page must not depend on that). */
function storeAlert(deviceId: string, payload: ReturnType<typeof alertFixture>): void {
  fleet.server.alerts.insert(deviceId, payload);
  fleet.server.events.fromIngest('alert', deviceId, payload);
}

test('an alert with a time out of range (a device sending ns) shows "—", and neither its pages nor the live feed break', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('ns-cam');
  storeAlert('ns-cam', alertFixture('ns-stored', { ts: 1_700_000_000_000_000_000 }));
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await login(page, '#/alerts');
    const stored = page.locator('[data-alert="ns-stored"]');
    await stored.waitFor();
    assert.equal((await stored.locator('time').textContent())?.trim(), '—');
    assert.equal(await page.getByText('Could not load this page').count(), 0);

    // Live: another bad one, then a good one: the feed goes on.
    storeAlert('ns-cam', alertFixture('ns-live', { ts: 9e15 }));
    await page.locator('[data-alert="ns-live"]').waitFor();
    // An update that fails (the alert it names is gone: 404) is logged; the feed goes on.
    fleet.server.events.fromIngest('alert', 'ns-cam', alertFixture('never-stored'));
    await waitFor('the failed update logged', () => errors.find((e) => e.startsWith('live update failed')));
    errors.length = 0;
    storeAlert('ns-cam', alertFixture('ok-live'));
    await page.locator('[data-alert="ok-live"] time[datetime]').waitFor();

    await page.goto(`${fleet.httpUrl}/#/devices/ns-cam`);
    await page.locator('[data-alert="ns-stored"]').waitFor();
    assert.equal(await page.getByText('Could not load this page').count(), 0);
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

/** Stream clients the server holds now. */
async function streams(): Promise<number> {
  return (await fleet.api<{ events: { clients: number } }>('GET', '/api/dashboard/status')).body.events.clients;
}

/**
 * Puts a tab in the background or brings it back, as far as the page can tell: headless Chromium
 * keeps every tab visible (neither a second tab, a minimized window nor Page.setWebLifecycleState
 * changes document.visibilityState there), so the document's visibilityState is overridden and the
 * event fired, as the browser does when a tab is switched away from. The connections the page then
 * closes or opens are real.
 */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  // A string, not a function: tsx's transform would name the getters with a helper the page lacks.
  await page.evaluate(`(() => {
    const hidden = ${hidden};
    Object.defineProperty(document, 'visibilityState', { configurable: true, get() { return hidden ? 'hidden' : 'visible'; } });
    Object.defineProperty(document, 'hidden', { configurable: true, get() { return hidden; } });
    document.dispatchEvent(new Event('visibilitychange'));
  })()`);
}

test('a tab in the background closes its live stream: a seventh tab still loads; shown again, it reopens and refetches', { skip, timeout: 90_000 }, async () => {
  fleet.addDevice('bg-cam');
  const ctx = await browser!.newContext();
  try {
    await waitFor('no stream left from earlier tests', async () => (await streams()) === 0);
    const { page: first, errors } = await openPage(ctx);
    await login(first);
    await first.getByText('live', { exact: true }).waitFor();
    assert.equal(await streams(), 1);
    await setHidden(first, true);
    await waitFor('the hidden tab closed its stream', async () => (await streams()) === 0);
    assert.equal(await first.locator('#live').textContent(), 'paused');

    // Six tabs in all, each hidden once loaded: none holds a connection.
    const tabs = [first];
    for (let i = 2; i <= 6; i++) {
      const { page } = await openPage(ctx);
      await page.goto(`${fleet.httpUrl}/#/devices`);
      await page.getByText('live', { exact: true }).waitFor();
      await setHidden(page, true);
      tabs.push(page);
    }
    await waitFor('every hidden tab closed its stream', async () => (await streams()) === 0);
    // Six streams would have taken all six of Chromium's connections to this host: this tab's calls would wait for ever.
    const { page: seventh } = await openPage(ctx);
    await seventh.goto(`${fleet.httpUrl}/#/devices`);
    await seventh.locator('tr[data-device="bg-cam"]').waitFor({ timeout: 10_000 });
    await seventh.getByText('live', { exact: true }).waitFor({ timeout: 10_000 });

    // Shown again: the first tab reopens its stream and shows what changed meanwhile (no event came for it).
    fleet.addDevice('late-cam');
    await setHidden(first, false);
    await first.locator('tr[data-device="late-cam"]').waitFor({ timeout: 10_000 });
    await first.getByText('live', { exact: true }).waitFor();
    await waitFor('two streams: the seventh tab and the first', async () => (await streams()) === 2);
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

test('a stream the server refused (503: all slots taken) is reopened once a slot is free; an ended session shows the login form', { skip, timeout: 90_000 }, async () => {
  const ctx = await browser!.newContext();
  const held: AbortController[] = [];
  try {
    await waitFor('no stream left from earlier tests', async () => (await streams()) === 0);
    // Take every slot the server has (64) from outside the browser.
    const token = await fleet.login();
    for (let i = 0; i < 64; i++) {
      const ac = new AbortController();
      const res = await fetch(`${fleet.httpUrl}/api/events`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
      assert.equal(res.status, 200);
      held.push(ac);
    }
    const { page, errors } = await openPage(ctx);
    await login(page);
    await page.locator('#live').getByText('reconnecting').waitFor();
    assert.equal(await streams(), 64);
    held.pop()!.abort();
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    assert.equal(await streams(), 64, 'the page took the freed slot');
    for (const ac of held.splice(0)) ac.abort();

    // The session ends elsewhere (a logout with the same cookie): the stream is closed, its reconnect refused with 401.
    const cookie = (await ctx.cookies(fleet.httpUrl)).find((c) => c.name === 'ef_session')!;
    // As the browser would send it: with its page's Origin (a cookie POST without one is refused).
    assert.equal((await fetch(`${fleet.httpUrl}/api/logout`, { method: 'POST', headers: { cookie: `ef_session=${cookie.value}`, origin: fleet.httpUrl } })).status, 200);
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#top').isHidden(), true);
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    for (const ac of held) ac.abort();
    await ctx.close();
  }
});

let published: Promise<void> | undefined;
function publishStandIns(): Promise<void> {
  published ??= (async () => {
    const ota = fleet.server.ota;
    for (const version of ['1.0.0', '2.0.0']) {
      await publishModelDir(ota.registry, ota.key.privateKey, { dir: writeStandIn(join(fleet.dir, 'models', version), { name: 'standin', version }) });
    }
  })();
  return published;
}

/** A rollout of standin@version to `target`, created and aborted (it frees the role for the next). */
async function abortedRollout(version: string, target: string): Promise<string> {
  const r = await fleet.api<{ rollout: { id: string } }>('POST', '/api/rollouts', { model: 'standin', version, role: 'detector', platform: 'onnx-cpu', target, waves: [100] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal((await fleet.api('POST', `/api/rollouts/${r.body.rollout.id}/abort`)).status, 200);
  return r.body.rollout.id;
}

test('a refused rollout action shows on the card whose button was clicked, the next success clears it; a failed refresh is shown and retried', { skip, timeout: 90_000 }, async () => {
  await publishStandIns();
  fleet.addDevice('ro-cam');
  const older = await abortedRollout('1.0.0', 'devices:ro-cam');
  const newer = await abortedRollout('2.0.0', 'devices:ro-cam');
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await login(page, '#/rollouts');
    await page.locator(`[data-rollout="${older}"]`).waitFor();
    await page.getByText('New rollout').click(); // collapsed, as an operator watching rollouts keeps it
    assert.equal(await page.getByRole('button', { name: 'Start rollout' }).isVisible(), false);

    // The older one cannot be rolled back while the newer one stands: 409, shown on its card.
    await page.getByRole('button', { name: 'Roll back rollout standin 1.0.0' }).click();
    const olderError = page.locator(`[data-rollout="${older}"] [role="alert"]`);
    await olderError.getByText(/Roll back failed: .*came after .*roll it back first/).waitFor();
    assert.equal(await olderError.isVisible(), true);

    await page.getByRole('button', { name: 'Roll back rollout standin 2.0.0' }).click();
    await page.locator(`[data-rollout="${newer}"] [data-state="rolled-back"]`).waitFor();
    assert.equal((await olderError.textContent())?.trim(), '', 'the next success clears the old failure');

    // The action succeeds but the refresh after it fails: said above the list, retried.
    let refused = 0;
    await page.route('**/api/rollouts', async (route) => {
      if (refused++ === 0) await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'E_BUSY', message: 'busy' } }) });
      else await route.continue();
    });
    await page.getByRole('button', { name: 'Roll back rollout standin 1.0.0' }).click();
    await page.locator('#rollout-list-error').getByText('Could not refresh the rollouts: busy').waitFor();
    await page.locator(`[data-rollout="${older}"] [data-state="rolled-back"]`).waitFor({ timeout: 15_000 });
    assert.equal((await page.locator('#rollout-list-error').textContent())?.trim(), '');
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

test('a device last seen days ago shows the local date and time, as every other time on the pages', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('old-cam');
  const seenMs = Date.parse('2024-03-05T02:30:00Z');
  new DeviceStore(fleet.server.db, () => seenMs).touch('old-cam');
  // New York: 2024-03-04 21:30 local, another day than in UTC.
  const ctx = await browser!.newContext({ timezoneId: 'America/New_York', locale: 'en-US' });
  try {
    const { page, errors } = await openPage(ctx);
    await login(page);
    const cell = page.locator('tr[data-device="old-cam"] td[data-label="Last seen"]');
    await cell.waitFor();
    assert.equal(await cell.textContent(), '3/4/2024, 9:30:00 PM');
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

test("a device's page lists its own rollouts however many others came after", { skip, timeout: 60_000 }, async () => {
  await publishStandIns();
  fleet.addDevice('hist-cam');
  fleet.addDevice('busy-cam');
  const own = await abortedRollout('1.0.0', 'devices:hist-cam');
  for (let i = 0; i < 5; i++) await abortedRollout(i % 2 ? '1.0.0' : '2.0.0', 'devices:busy-cam');
  const api = await fleet.api<{ items: { id: string }[] }>('GET', '/api/rollouts?deviceId=hist-cam');
  assert.deepEqual(api.body.items.map((r) => r.id), [own]);
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await login(page, '#/devices/hist-cam');
    await page.getByRole('list', { name: 'Rollouts of this device' }).getByText(`rollout ${own} aborted`).waitFor();
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

test('the Alerts page refetches the device list once for a burst of device events; the Rollouts page polls only running rollouts', { skip, timeout: 60_000 }, async () => {
  await publishStandIns();
  fleet.addDevice('poll-cam');
  const finished = await abortedRollout('1.0.0', 'devices:poll-cam');
  // Never reported: it stays running (its wave times out in 15 min). Its own role leaves the detector role free.
  const r = await fleet.api<{ rollout: { id: string } }>('POST', '/api/rollouts', { model: 'standin', version: '2.0.0', role: 'poll-role', platform: 'onnx-cpu', target: 'devices:poll-cam', waves: [100] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const running = r.body.rollout.id;
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    const asked: string[] = [];
    page.on('request', (req) => { asked.push(new URL(req.url()).pathname); });
    await login(page, '#/alerts');
    await page.getByText('live', { exact: true }).waitFor();
    asked.length = 0;
    for (let i = 0; i < 30; i++) fleet.server.events.publish({ type: 'device', deviceId: 'poll-cam' });
    await waitFor('the device list refetched', () => asked.includes('/api/dashboard/devices'), 5000);
    await new Promise((res) => setTimeout(res, 1500)); // a second refetch would come within this
    assert.equal(asked.filter((p) => p === '/api/dashboard/devices').length, 1, asked.join(' '));

    await page.goto(`${fleet.httpUrl}/#/rollouts`);
    await page.locator(`[data-rollout="${running}"] [data-state="running"]`).waitFor();
    asked.length = 0;
    await waitFor('three polls of the running rollout', () => asked.filter((p) => p === `/api/rollouts/${running}`).length >= 3, 10_000);
    assert.equal(asked.filter((p) => p === `/api/rollouts/${finished}`).length, 0, 'the finished rollout is not polled');
    await page.locator(`[data-rollout="${running}"]`).getByRole('button', { name: /^Abort/ }).click();
    await page.locator(`[data-rollout="${running}"] [data-state="aborted"]`).waitFor();
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
});

// The page filtered the newest 200 alerts of the whole fleet in the browser: a quiet site's alerts,
// behind a busy device's, never showed, and there was no way to older ones.
test('alert filters ask the server, so a quiet site\'s alerts show behind a busy device\'s; older alerts load on demand', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('alerts-quiet');
  fleet.addDevice('alerts-busy');
  const groups = await fleet.api('PUT', '/api/devices/alerts-quiet/groups', { groups: ['site-quiet'] });
  assert.equal(groups.status, 200, JSON.stringify(groups.body));
  storeAlert('alerts-quiet', alertFixture('quiet-1', { rule: 'door' }));
  for (let i = 0; i < 250; i++) storeAlert('alerts-busy', alertFixture(`busy-${i}`, { rule: 'gate' }));
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await login(page, '#/alerts');
    await page.locator('[data-alert="busy-249"]').waitFor();
    assert.equal(await page.locator('[data-alert="quiet-1"]').count(), 0, 'behind 250 newer alerts');
    await page.locator('#alert-site').selectOption('site-quiet');
    await page.locator('[data-alert="quiet-1"]').waitFor();
    assert.equal(await page.locator('[data-alert^="busy-"]').count(), 0);
    await page.locator('#alert-site').selectOption('');
    await page.locator('[data-alert="busy-249"]').waitFor();
    assert.equal(await page.locator('[data-alert="busy-0"]').count(), 0);
    await page.locator('#alert-older').click();
    await page.locator('#alert-older').click();
    await page.locator('[data-alert="busy-0"]').waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

/**
 * A device and a finished (aborted) rollout to it, on a logged-in Rollouts page whose card shows the
 * device's Reported cell as '—'. `prepare` runs on the page before it loads (routes, init scripts).
 */
async function finishedRolloutCell(ctx: BrowserContext, deviceId: string, prepare?: (page: Page, rolloutId: string) => Promise<void>): Promise<{ page: Page; errors: string[]; cell: Locator }> {
  await publishStandIns();
  fleet.addDevice(deviceId);
  const finished = await abortedRollout('1.0.0', `devices:${deviceId}`);
  const { page, errors } = await openPage(ctx);
  await prepare?.(page, finished);
  await login(page, '#/rollouts');
  const cell = page.locator(`[data-rollout="${finished}"] td[data-label="Reported"]`);
  await cell.waitFor();
  assert.equal((await cell.textContent())?.trim(), '—');
  return { page, errors, cell };
}

/** The device reports 1.0.0 installed, and the server announces it, as ingest does. */
function reportInstalled(deviceId: string): void {
  fleet.server.devices.applyReported(deviceId, { v: 1, ts: Date.now(), models: { detector: '1.0.0' }, health: { status: 'ok', reasons: [] } });
  fleet.server.events.publish({ type: 'device', deviceId });
}

async function showsInstalled(cell: Locator, what: string): Promise<void> {
  await waitFor(what, async () => (await cell.textContent())?.includes('1.0.0') || undefined, 10_000, 100);
}

// The Rollouts page reused the cached status of a rollout that was not running: a device reporting
// its version afterwards (back on the previous model after a roll back) never showed until a reload.
test('a device that reports after its rollout finished shows its version on the finished rollout\'s card', { skip, timeout: 60_000 }, async () => {
  const ctx = await browser!.newContext();
  try {
    const { errors, cell } = await finishedRolloutCell(ctx, 'reporting-cam');
    reportInstalled('reporting-cam');
    await showsInstalled(cell, 'the card shows the reported version');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('a change made after the page fetched its data but before its live stream opened shows once the stream opens', { skip, timeout: 60_000 }, async () => {
  const ctx = await browser!.newContext();
  try {
    // The page's stream is held until the change is made: it comes as no event to the page.
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const { errors, cell } = await finishedRolloutCell(ctx, 'early-cam', async (page) => {
      await page.route('**/api/events', async (route) => { await held; await route.continue(); });
    });
    reportInstalled('early-cam');
    release();
    await showsInstalled(cell, 'the card shows the version reported before the stream opened');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

/** Counts the events of each type the page receives in `window.events` (this listener comes before the app's own). */
async function countEvents(page: Page): Promise<void> {
  await page.addInitScript({ content: `
    window.events = { device: 0, telemetry: 0 };
    window.EventSource = class extends window.EventSource {
      constructor(url, init) {
        super(url, init);
        for (const type of Object.keys(window.events)) this.addEventListener(type, () => { window.events[type] += 1; });
      }
    };` });
}

/**
 * The server answers the page's `nth` fetch of the rollout at once, and the answer is given to the
 * page only on release(): an answer older than what happens meanwhile.
 */
async function holdAnswer(page: Page, rolloutId: string, nth: () => boolean): Promise<{ answered: Promise<void>; release: () => void; given: Promise<void>; fetches: () => number }> {
  let fetches = 0;
  let answered!: () => void;
  const made = new Promise<void>((resolve) => { answered = resolve; });
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  let gave!: () => void;
  const given = new Promise<void>((resolve) => { gave = resolve; });
  await page.route(`**/api/rollouts/${rolloutId}`, async (route) => {
    fetches += 1;
    if (!nth()) { await route.continue(); return; }
    const response = await route.fetch();
    answered();
    await held;
    await route.fulfill({ response });
    gave();
  });
  return { answered: made, release, given, fetches: () => fetches };
}

// CI failed the test above this way: the refresh made when the stream opened was answered (before
// the report) only after the report's event had come; that answer cleared the event's mark and the
// event's own refresh then reused it, or it replaced the newer answer of that refresh.
test('a refresh answered with data older than a live event does not hide the change', { skip, timeout: 60_000 }, async () => {
  const ctx = await browser!.newContext();
  try {
    let hold!: Awaited<ReturnType<typeof holdAnswer>>;
    let n = 0;
    const { page, errors, cell } = await finishedRolloutCell(ctx, 'late-answer-cam', async (p, rolloutId) => {
      await countEvents(p);
      // The second fetch: the refresh when the page's stream opens.
      hold = await holdAnswer(p, rolloutId, () => ++n === 2);
    });
    await hold.answered;
    reportInstalled('late-answer-cam');
    await pageHas(page, 'window.events.device > 0');
    hold.release();
    await showsInstalled(cell, 'the card shows the version reported after the old answer was made');
    assert.ok(hold.fetches() >= 3, `the event's refresh fetched the rollout again (${hold.fetches()} fetches)`);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('an answer older than the one shown is dropped (the refresh for the event was answered first)', { skip, timeout: 60_000 }, async () => {
  const ctx = await browser!.newContext();
  try {
    let hold!: Awaited<ReturnType<typeof holdAnswer>>;
    let n = 0;
    const { page, errors, cell } = await finishedRolloutCell(ctx, 'overtaken-cam', async (p, rolloutId) => {
      hold = await holdAnswer(p, rolloutId, () => ++n === 2);
    });
    await hold.answered;
    reportInstalled('overtaken-cam');
    // The event's refresh is answered and shown while the older answer is still held.
    await showsInstalled(cell, 'the event\'s refresh shows the reported version');
    hold.release();
    await hold.given;
    await page.waitForTimeout(1000);
    assert.match((await cell.textContent()) ?? '', /1\.0\.0/, 'the older answer did not replace the newer one');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('a page rendered while a busy fleet sends over a thousand events renders once, and is not rendered again and again', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('busy-page-cam');
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await countEvents(page);
    let renders = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let fetched!: () => void;
    const asked = new Promise<void>((resolve) => { fetched = resolve; });
    await login(page, '#/devices');
    await page.locator('#live.on').waitFor();
    // The device page's first fetch is held while 1200 telemetry events of other devices come.
    await page.route('**/api/devices/busy-page-cam', async (route) => {
      renders += 1;
      if (renders === 1) { fetched(); await held; }
      await route.continue();
    });
    await page.evaluate("location.hash = '#/devices/busy-page-cam'");
    await asked;
    for (let i = 0; i < 1200; i += 1) {
      fleet.server.events.publish({ type: 'telemetry', deviceId: `other-${i}`, tsMs: Date.now(), detectFps: 5, p95Ms: 20, driftFlagged: false });
    }
    await pageHas(page, 'window.events.telemetry >= 1200');
    release();
    await page.locator('#device-state').waitFor();
    await page.waitForTimeout(2000);
    assert.equal(renders, 1, 'the page was fetched once');
    assert.equal(await page.locator('#device-state').count(), 1);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('an event that comes while a page is being rendered is handed to the page once rendered', { skip, timeout: 60_000 }, async () => {
  await publishStandIns();
  fleet.addDevice('render-cam');
  const finished = await abortedRollout('1.0.0', 'devices:render-cam');
  const ctx = await browser!.newContext();
  try {
    const { page, errors } = await openPage(ctx);
    await countEvents(page);
    let holding = false;
    const hold = await holdAnswer(page, finished, () => holding);
    await login(page, '#/devices');
    await page.locator('#live.on').waitFor();
    // Rollouts is rendered while the stream is open: its data is fetched before the report, and
    // the report's event comes before the page is rendered.
    holding = true;
    await page.evaluate("location.hash = '#/rollouts'");
    await hold.answered;
    holding = false;
    reportInstalled('render-cam');
    await pageHas(page, 'window.events.device > 0');
    hold.release();
    const cell = page.locator(`[data-rollout="${finished}"] td[data-label="Reported"]`);
    await cell.waitFor();
    await showsInstalled(cell, 'the card shows the version reported while the page was rendered');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
