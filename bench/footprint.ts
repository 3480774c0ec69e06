/**
 * Item 7, footprint: resident memory and CPU of the `edge-agent run` process (/proc), when idle (a
 * live camera showing a still scene: the motion gate keeps the detector off), at camera rate
 * (vtest.avi at its 10 fps, detector every 3rd frame) and flat out (every frame, detector on each).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus } from 'node:os';
import { agentSummary, spawnAgent, vtestSource, writeAgentConfig, type AgentBenchConfig } from './lib/agent-cli.js';
import type { BenchContext } from './lib/context.js';
import { sampleUsage, type UsageWindow } from './lib/proc.js';
import type { BenchResult, Cell } from './lib/result.js';
import { round } from './lib/stats.js';

interface Scenario { name: string; config: AgentBenchConfig }

async function measure(s: Scenario, windowMs: number): Promise<UsageWindow & { framesProcessed: number; detected: number }> {
  const path = writeAgentConfig(s.config);
  const ndjson = join(dirname(path), 'frames.ndjson');
  const child = spawnAgent(path, ['--ndjson', ndjson]);
  const done = agentSummary(child);
  // Running = the first frame line is out (model loaded, capture started); then let it settle.
  const deadline = Date.now() + 60_000;
  while (!(existsSync(ndjson) && statSync(ndjson).size > 0)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`edge-agent (${s.name}) wrote no frame within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const usage = await sampleUsage(child.pid as number, windowMs);
  child.kill('SIGTERM');
  const summary = await done;
  return { ...usage, framesProcessed: summary.processed, detected: summary.detected };
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const t0 = Date.now();
  const windowMs = ctx.quick ? 3000 : 10_000;
  const threads = Math.max(1, cpus().length);
  const scenarios: Scenario[] = [
    { name: 'idle (live 5 fps still scene, motion gate on)', config: { threads, interval: 3, motion: true, source: { kind: 'test', pattern: 'black', framerate: 5, live: true, id: 'still' } } },
    { name: 'camera rate (vtest.avi at 10 fps, detector every 3rd frame)', config: { threads, interval: 3, motion: true, source: vtestSource({ frames: 0, realtime: true }) } },
    { name: 'flat out (every frame, detector on each)', config: { threads, interval: 1, source: vtestSource({ frames: 0 }) } },
  ];
  const rows: Cell[][] = [];
  const heads: string[] = [];
  const figures: Record<string, unknown> = {};
  for (const s of scenarios) {
    ctx.log(`footprint: ${s.name}`);
    const u = await measure(s, windowMs);
    figures[s.name] = u;
    const mib = (b: number) => round(b / 2 ** 20, 0);
    heads.push(`${s.name.split(' (')[0]} ${mib(u.rssMeanBytes)} MiB, ${round(u.cpuPercentOfCore, 0)} % of a core`);
    rows.push([s.name, mib(u.rssMeanBytes), mib(u.rssMaxBytes), mib(u.peakRssBytes), round(u.cpuPercentOfCore, 1), round(u.cpuPercentOfCore / ctx.machine.cores, 1), u.framesProcessed, u.detected]);
  }
  return {
    bench: 'footprint', item: 7, title: 'Footprint', status: 'measured', createdAt: new Date().toISOString(),
    durationS: (Date.now() - t0) / 1000, machine: ctx.machine,
    method: `The \`edge-agent run\` process (CenterNet, ${threads} intra-op threads) sampled from /proc for ${windowMs / 1000} s once its first frame is out and 2 s have passed: ` +
      'RSS every 250 ms (VmRSS; peak = VmHWM over the process life), CPU = utime + stime over wall time (100 % = one core). No goal is set in the issue.',
    goals: [],
    headline: heads.join('; '),
    tables: [{ columns: ['state', 'RSS mean MiB', 'RSS max MiB', 'peak RSS MiB', 'CPU % of one core', 'CPU % of machine', 'frames processed (whole run)', 'detector calls'], rows }],
    figures,
  };
}
