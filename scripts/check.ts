/**
 * Lint and type-check, side by side (`npm test` runs this before the tests): each takes 15–20 s on
 * 2 cores, mostly on one core. Both always run to the end; the output of each is printed whole, in
 * order, and the exit code is non-zero when either failed.
 */
import { spawn } from 'node:child_process';

interface Outcome { name: string; code: number; output: string }

function run(name: string, cmd: string, args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', (err) => resolve({ name, code: 127, output: `${output}${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ name, code: code ?? (signal ? 1 : 0), output }));
  });
}

const outcomes = await Promise.all([
  run('lint (eslint .)', 'npx', ['--no-install', 'eslint', '.']),
  run('type-check (tsc --noEmit -p tsconfig.json)', 'npx', ['--no-install', 'tsc', '--noEmit', '-p', 'tsconfig.json']),
]);
for (const o of outcomes) {
  process.stdout.write(`${o.code === 0 ? 'ok' : 'FAILED'}: ${o.name}\n${o.output}`);
}
process.exit(outcomes.some((o) => o.code !== 0) ? 1 : 0);
