/**
 * `npm start` (scripts/demo.ts): fleet server with its embedded broker + one agent on vtest.avi with
 * the default COCO model and the example zone/line rules. At least one alert reaches the server
 * (printed by the demo and listed by the API), and SIGINT stops everything cleanly: exit 0, outbox
 * drained.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from '../helpers/wait.js';

const NEEDS = ['assets/models/coco-centernet/model.onnx', 'assets/video/vtest.avi'].map((p) => resolve(p));

test('demo: fleet server + agent on vtest.avi, alerts arrive at the server, Ctrl-C stops cleanly', { timeout: 150_000 }, async (t) => {
  const missing = NEEDS.filter((p) => !existsSync(p));
  if (missing.length) {
    t.skip(`needs ${missing.join(', ')} (run ./scripts/setup.sh)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-demo-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--http-port', '0', '--mqtt-port', '0', '--data-dir', dir, '--frames', '300'], {
    env: { ...process.env, EF_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (l) => out.push(l));
  child.stderr.on('data', (d: Buffer) => { stderr += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  try {
    const banner = await waitFor('the server line', () => out.find((l) => l.startsWith('fleet server: dashboard ')), 30_000);
    const m = /dashboard (http:\/\/127\.0\.0\.1:\d+)\/ \(log in as admin \/ (\S+)\), API \1\/api/.exec(banner);
    assert.ok(m, banner);
    const [, httpUrl, password] = m;
    const page = await fetch(`${httpUrl}/`);
    assert.equal(page.status, 200, 'the dashboard is served at the printed address');
    const first = await waitFor('the first alert line', () => out.find((l) => l.startsWith('alert ')), 90_000);
    assert.match(first, /^alert (zone-enter|zone-exit|line-cross|dwell|count)\b.*person track \d+ at frame \d+/);

    const login = await fetch(`${httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    assert.equal(login.status, 200);
    const { token } = (await login.json()) as { token: string };
    const res = await fetch(`${httpUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const body = JSON.stringify(await res.json());
    assert.match(body, /demo-01/, 'the server lists the demo device alert');

    const t0 = Date.now();
    child.kill('SIGINT');
    const { code, signal } = await exited;
    const stopMs = Date.now() - t0;
    assert.equal(signal, null, stderr.slice(-2000));
    assert.equal(code, 0, stderr.slice(-2000));
    assert.ok(out.includes('demo stopped cleanly'), out.join('\n'));
    const outbox = out.find((l) => l.startsWith('outbox: '));
    assert.match(outbox ?? '', /, 0 pending/);
    const alerts = out.filter((l) => l.startsWith('alert ')).length;
    const raised = Number(/(\d+) alerts raised/.exec(out.find((l) => l.startsWith('agent: ')) ?? '')?.[1]);
    assert.equal(alerts, raised, 'every alert the rules raised was delivered to the server: none lost on the stop');
    process.stdout.write(`# demo: ${alerts} alerts printed, stop ${stopMs} ms after SIGINT\n`);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
