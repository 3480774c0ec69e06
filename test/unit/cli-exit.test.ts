/**
 * How a finished edge-agent command ends (agent/src/cli/exit.ts): by letting the event loop drain,
 * so Node drains V8's background tasks before any isolate is torn down (see exit.ts for the CI abort
 * this avoids), and by process.exit() only when a handle holds the loop open past the grace period.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** Runs exitWhenFlushed(3, 300) in a child; with `hold`, an interval timer keeps the loop alive. */
function runExit(hold: boolean): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const script = [
    `const { exitWhenFlushed } = await import(${JSON.stringify(resolve('agent/src/cli/exit.ts'))});`,
    `const { writeSync } = await import('node:fs');`,
    // 'beforeExit' is emitted only when the loop drains by itself, never on process.exit().
    `process.once('beforeExit', () => writeSync(1, 'drained\\n'));`,
    hold ? `setInterval(() => undefined, 60_000);` : '',
    `process.stdout.write('result\\n');`,
    `const t0 = performance.now();`,
    // Written on either way out: how long after the call the process ended.
    `process.once('exit', () => writeSync(2, 'after ' + Math.round(performance.now() - t0) + ' ms\\n'));`,
    `await exitWhenFlushed(3, 300);`,
  ].join('\n');
  const t0 = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('close', (code) => { clearTimeout(timer); done({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

test('a finished command ends by draining the event loop, with its exit code, not through process.exit()', async () => {
  const r = await runExit(false);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'result\ndrained\n');
});

test('a handle that holds the loop open does not keep a finished command running: process.exit after the grace period', async () => {
  const r = await runExit(true);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'result\n', 'the loop never drained, so the exit came from the grace timer');
  const after = Number(/after (\d+) ms/.exec(r.stderr)?.[1]);
  assert.ok(after >= 290 && r.ms < 20_000, `exited ${after} ms after the call (grace 300 ms), ${r.ms} ms after the start`);
});
