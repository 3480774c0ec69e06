/**
 * Runs `edge-agent run` (bin/edge-agent.js, the same entry a user runs) as a child process on a
 * generated config and returns its `--json` summary. Each run is its own process, so one bench run
 * cannot warm caches or leak threads into the next.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunSummary } from '../../agent/src/pipeline/agent-runner.js';
import { runTsJson } from './context.js';

export const CENTERNET = resolve('assets/models/coco-centernet/model.onnx');
export const VTEST = resolve('assets/video/vtest.avi');

export interface AgentBenchConfig {
  threads: number;
  /** Detector interval k (fixed schedule); the motion gate is off unless `motion` is set. */
  interval: number;
  motion?: boolean;
  source: Record<string, unknown>;
  rules?: unknown[];
  model?: string;
}

export function writeAgentConfig(c: AgentBenchConfig, dir = mkdtempSync(join(tmpdir(), 'ef-bench-'))): string {
  const path = join(dir, 'agent.json');
  const config = {
    deviceId: 'bench-01',
    stateDir: join(dir, 'state'),
    detector: { model: c.model ?? CENTERNET, providers: ['cpu'], threads: c.threads, labels: ['person'] },
    cameras: [{ source: c.source, rules: { rules: c.rules ?? [] } }],
    schedule: { mode: 'fixed', interval: c.interval, motion: { enabled: c.motion ?? false } },
    log: { level: 'warn' },
  };
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Starts `edge-agent run --config PATH --json`; the caller waits with `agentSummary`. */
export function spawnAgent(configPath: string, extra: string[] = []): ChildProcess {
  // UV_THREADPOOL_SIZE as the systemd unit sets it: without it bin/edge-agent.js runs the agent as its
  // child, and the footprint bench read the 55 MiB, idle wrapper from /proc instead of the agent.
  return spawn(process.execPath, ['bin/edge-agent.js', 'run', '--config', configPath, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
  });
}

/** Waits for the run summary; a run that outlives `timeoutMs` is killed (a hung bench must not hang `npm run bench`). */
export function agentSummary(child: ChildProcess, timeoutMs = 240_000): Promise<RunSummary> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolveP, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      err += `\n[bench] killed after ${timeoutMs} ms`;
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"type":"summary"'));
      if (!line) {
        reject(new Error(`edge-agent run exited with ${code ?? signal} and no summary; stderr: ${err.slice(-1500)}`));
        return;
      }
      resolveP(JSON.parse(line) as RunSummary);
    });
  });
}

export async function runAgent(c: AgentBenchConfig): Promise<RunSummary> {
  return agentSummary(spawnAgent(writeAgentConfig(c)));
}

export interface TimedRun {
  summary: RunSummary;
  /** Frames per second between frame `skip` and the last frame (no start-up or end in it). */
  steadyFps: number;
}

/** Runs the agent pipeline in a child process (bench/lib/agent-child.ts) and times each frame. */
export async function runAgentTimed(c: AgentBenchConfig, opts: { skip?: number; onRetry?: (err: Error) => void } = {}): Promise<TimedRun> {
  const skip = opts.skip ?? 5;
  const frames = Number((c.source as { maxFrames?: number }).maxFrames ?? 100);
  const attempt = () => runTsJson<{ summary: RunSummary; frameDoneMs: number[] }>('bench/lib/agent-child.ts', ['--config', writeAgentConfig(c)], { UV_THREADPOOL_SIZE: '16' }, 60_000 + frames * 1500);
  // One retry: a run that hangs (seen intermittently under heavy load) is killed, reported and run again.
  const out = await attempt().catch((err: Error) => { opts.onRetry?.(err); return attempt(); });
  const t = out.frameDoneMs;
  const from = Math.min(skip, t.length - 2);
  const steadyFps = t.length >= 2 ? ((t.length - 1 - from) * 1000) / (t[t.length - 1] - t[from]) : Number.NaN;
  return { summary: out.summary, steadyFps };
}

/** A file source over vtest.avi: every frame processed (back-pressure), or at the file's rate. */
export function vtestSource(opts: { frames: number; realtime?: boolean }): Record<string, unknown> {
  return { kind: 'file', path: VTEST, id: 'walkway', maxFrames: opts.frames, realtime: opts.realtime ?? false };
}
