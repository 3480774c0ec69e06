/** What bench/run.ts hands every bench. */
import { spawn } from 'node:child_process';
import type { MachineInfo } from './machine.js';

export interface BenchContext {
  machine: MachineInfo;
  /** Smaller sample counts (a smoke run of the harness, not figures to publish). */
  quick: boolean;
  log(msg: string): void;
}

/** Runs `node --import tsx SCRIPT ARGS` and returns the last JSON line it printed on stdout. */
export function runTsJson<T>(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    // A hung child must not hang `npm run bench`.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      err += `\n[bench] killed after ${timeoutMs} ms`;
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`${script} exited with ${code}; stderr: ${err.slice(-1500)}`));
      else resolve(JSON.parse(line) as T);
    });
  });
}
