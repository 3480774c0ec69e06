/** Real GStreamer in a child process, so that a hang fails the test (killed at a limit) instead of stalling it. */
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { tsEntry } from './repo.js';

/** The `skip` option of a GStreamer test: false, or why gstreamer-superficial cannot be used here. */
export const gstSkip: string | false = (() => {
  try {
    createRequire(import.meta.url)('gstreamer-superficial');
    return false;
  } catch (err) {
    return `gstreamer-superficial does not load (${(err as Error).message}): run ./scripts/setup.sh`;
  }
})();

export interface ChildRun { hung: boolean; code: number | null; stdout: string; stderr: string }

/**
 * Runs the TypeScript file `script` (test/helpers/repo.ts tsEntry) with `args` and `env` added to this process's;
 * resolves with its output once it exits, or with `hung: true` once it has run for `limitMs` (then killed).
 */
export async function runTsChild(script: string, opts: { args?: string[]; env?: Record<string, string>; limitMs: number }): Promise<ChildRun> {
  const child = spawn(process.execPath, [...tsEntry(script), ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: '16', ...opts.env },
  });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  let hung = false;
  const timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, opts.limitMs);
  try {
    const [code] = await once(child, 'exit') as [number | null];
    return { hung, code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
