/**
 * The Rollouts and Device pages follow the server's `rollout` events, in a real browser (Debian's
 * chromium through playwright-core): a rollout changed elsewhere (fleetctl, another tab) shows without
 * a reload even when no rollout runs (the Rollouts page polls only running ones), and an event
 * refetches only the rollout it names; the Device page, only for the device's own rollouts.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startFleet, OPERATOR_PASSWORD, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, chromiumSkip } from '../helpers/chromium.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

const skip = chromiumSkip;

let fleet: TestFleet;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({ broker: 'aedes' });
  const dir = writeStandIn(join(fleet.dir, 'src', '2.0.0'), { name: 'standin', version: '2.0.0' });
  await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

async function createRollout(role: string, target: string): Promise<string> {
  const r = await fleet.api<{ rollout: { id: string } }>('POST', '/api/rollouts', { model: 'standin', version: '2.0.0', role, platform: 'onnx-cpu', target, waves: [100] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.rollout.id;
}

/**
 * Runs `body` on a page logged in at `hash`, in a browser context of its own, recording the paths
 * the page asks for; the page must raise no script error.
 */
async function onPage(hash: string, body: (p: { page: Page; asked: string[] }) => Promise<void>): Promise<void> {
  const ctx = await browser!.newContext();
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (err) => { errors.push(err.message); });
    const asked: string[] = [];
    page.on('request', (req) => { asked.push(new URL(req.url()).pathname); });
    await page.goto(`${fleet.httpUrl}/${hash}`);
    await page.getByLabel('Password').fill(OPERATOR_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await body({ page, asked });
    assert.deepEqual(errors, [], 'no script errors in the page');
  } finally {
    await ctx.close();
  }
}

/** Waits until the page has asked for nothing new for `ms` (at most 10 s). */
async function quiet(asked: string[], ms: number): Promise<void> {
  let seen = asked.length, since = Date.now();
  await waitFor(`${ms} ms without a request from the page`, () => {
    if (asked.length !== seen) { seen = asked.length; since = Date.now(); }
    return Date.now() - since >= ms;
  }, 10_000);
}

test('a rollout changed elsewhere shows at once on the Rollouts page, none running; an event refetches only its rollout', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('ev-a');
  fleet.addDevice('ev-b');
  const finished = await createRollout('ev-role-a', 'devices:ev-a');
  assert.equal((await fleet.api('POST', `/api/rollouts/${finished}/abort`)).status, 200);
  await onPage('#/rollouts', async ({ page, asked }) => {
    await page.locator(`[data-rollout="${finished}"] [data-state="aborted"]`).waitFor();
    await page.getByText('live', { exact: true }).waitFor();

    // Rolled back by another operator (fleetctl): nothing runs, so nothing polls; the event shows it.
    const mark = asked.length;
    assert.equal((await fleet.api('POST', `/api/rollouts/${finished}/rollback`)).status, 200);
    await page.locator(`[data-rollout="${finished}"] [data-state="rolled-back"]`).waitFor({ timeout: 5000 });

    // The state can show from a refresh already in flight when the event came (the stream's opening
    // one); the event's own refresh follows 300 ms later and rightly fetches that rollout once more:
    // a list asked for after the rollback, then the rollout. Nothing runs, so after it the page is quiet.
    await waitFor('the rollback event\'s refresh', () => {
      const list = asked.indexOf('/api/rollouts', mark);
      return list >= 0 && asked.indexOf(`/api/rollouts/${finished}`, list) > list;
    }, 10_000);
    await quiet(asked, 1000);
    // A new rollout's event fetches it; the finished one, unchanged, is not fetched again.
    asked.length = 0;
    const running = await createRollout('ev-role-b', 'devices:ev-b');
    await page.locator(`[data-rollout="${running}"] [data-state="running"]`).waitFor({ timeout: 5000 });
    await waitFor('a poll of the running rollout after its event', () => asked.filter((p) => p === `/api/rollouts/${running}`).length >= 2, 10_000);
    assert.equal(asked.filter((p) => p === `/api/rollouts/${finished}`).length, 0, asked.join(' '));
    assert.equal((await fleet.api('POST', `/api/rollouts/${running}/abort`)).status, 200);
  });
});

// The Device page listened to device, telemetry and alert events only: its rollouts showed a new
// rollout of the device, or an abort, only after a reload.
test('the Device page shows a new rollout of the device and its abort at once, and ignores other devices\' rollouts', { skip, timeout: 60_000 }, async () => {
  fleet.addDevice('ev-c');
  fleet.addDevice('ev-d');
  await onPage('#/devices/ev-c', async ({ page, asked }) => {
    await page.locator('#device-previous').waitFor();
    await page.getByText('live', { exact: true }).waitFor();
    const rollouts = page.getByRole('list', { name: 'Rollouts of this device' });

    const own = await createRollout('ev-role-c', 'devices:ev-c');
    await rollouts.getByText(`rollout ${own} running`).waitFor({ timeout: 5000 });
    assert.equal((await fleet.api('POST', `/api/rollouts/${own}/abort`)).status, 200);
    await rollouts.getByText(`rollout ${own} aborted`).waitFor({ timeout: 5000 });

    // Another device's rollout: its events fetch at most the device's list, never that rollout.
    asked.length = 0;
    const other = await createRollout('ev-role-d', 'devices:ev-d');
    assert.equal((await fleet.api('POST', `/api/rollouts/${other}/abort`)).status, 200);
    await waitFor('the page looked at the events of the other rollout', () => asked.filter((p) => p === '/api/rollouts').length >= 2, 5000);
    assert.equal(asked.filter((p) => p === `/api/rollouts/${other}`).length, 0, asked.join(' '));
    assert.equal(await rollouts.locator('li').count(), 1);
  });
});
