/** Runs one of the project's binaries as a child process, with a hard timeout (a hang fails the test). */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { exitCodeFor } from '../../agent/src/cli/dispatch.js';

/**
 * The file that runs `binary`: the esbuild bundle scripts/run-tests.ts builds for the run
 * (EF_TEST_BUNDLES: dist/, what a release runs, from the same sources), else the tsx entry in bin/.
 * A bundle starts in ~0.4 s of CPU, against 1.5-2.5 s through tsx, which also starts tsx in each
 * inference worker: the CLI tests' start-ups were a large share of the suite's CPU. Tests of
 * bin/*.js's own behaviour (its thread-pool re-exec) spawn bin/ themselves.
 */
export function binaryEntry(binary: 'edge-agent' | 'fleetctl' | 'fleet-server'): string {
  const bundles = process.env.EF_TEST_BUNDLES;
  return bundles ? join(bundles, `${binary}.mjs`) : resolve('bin', `${binary}.js`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** `terminate`: SIGTERM once it settles (the way systemd stops the service); the result is the exit that follows. */
export function runCli(binary: 'edge-agent' | 'fleetctl' | 'fleet-server', args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; terminate?: Promise<unknown> } = {}): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binaryEntry(binary), ...args], {
      cwd: opts.cwd ?? process.cwd(), env: { ...process.env, EF_LOG_LEVEL: 'warn', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${binary} ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 60_000} ms (hang)\nstderr: ${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    const stop = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); };
    opts.terminate?.then(stop, stop);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - t0 });
    });
  });
}

/**
 * Runs a command module's `run` in this process, for checks of its argument errors: the exit code the
 * binary would give the error it throws (dispatch's exitCodeFor) and its message, or the code `run`
 * returned. Each binary start costs ~1.7 s of tsx start-up; keep one run through the binary per command.
 */
export async function commandOutcome(command: { run(argv: string[]): Promise<number> }, args: string[]): Promise<{ code: number; message: string }> {
  try {
    return { code: await command.run(args), message: '' };
  } catch (err) {
    return { code: exitCodeFor(err), message: (err as Error).message };
  }
}
