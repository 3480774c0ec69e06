/**
 * Item 2, tracker interval: `edge-agent run` on vtest.avi with the detector on every k-th frame
 * (k = 1, 2, 3, 5; the tracker predicts the frames between), reporting output frames/s and detector
 * calls. Rounds go up then down in k so that a load change spreads over every k.
 */
import { cpus } from 'node:os';
import { runAgentTimed, vtestSource } from './lib/agent-cli.js';
import type { BenchContext } from './lib/context.js';
import type { BenchResult, Cell } from './lib/result.js';
import { median, round } from './lib/stats.js';

const INTERVALS = [1, 2, 3, 5];

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const t0 = Date.now();
  const retries: string[] = [];
  const frames = ctx.quick ? 15 : 60;
  const rounds = ctx.quick ? 1 : 2;
  const threads = Math.max(1, cpus().length);
  const fps = new Map<number, number[]>(INTERVALS.map((k) => [k, []]));
  const calls = new Map<number, number>();
  const trackMs = new Map<number, number[]>(INTERVALS.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? INTERVALS : [...INTERVALS].reverse();
    for (const k of order) {
      ctx.log(`tracker: k=${k}, round ${r + 1}/${rounds}`);
      const run1 = await runAgentTimed({ threads, interval: k, source: vtestSource({ frames }) }, { onRetry: (err) => { retries.push(err.message.slice(0, 600)); ctx.log(`retrying a failed run: ${err.message.slice(0, 600)}`); } });
      const s = run1.summary;
      fps.get(k)!.push(run1.steadyFps);
      ctx.log(`tracker: k=${k}: ${round(run1.steadyFps, 2)} fps, ${s.detected} detector calls`);
      calls.set(k, s.detected);
      trackMs.get(k)!.push(s.latencyMs.track?.meanMs ?? Number.NaN);
    }
  }
  const base = median(fps.get(1)!);
  const rows: Cell[][] = INTERVALS.map((k) => {
    const f = median(fps.get(k)!);
    return [k, frames, calls.get(k) ?? null, round(f, 2), round(f / base, 2), k, round(median(trackMs.get(k)!), 2)];
  });
  return {
    bench: 'tracker', item: 2, title: 'Tracker interval', status: 'measured', createdAt: new Date().toISOString(),
    durationS: (Date.now() - t0) / 1000, machine: ctx.machine,
    method: `The agent pipeline (AgentRunner, what \`edge-agent run\` runs, in a child process) on the first ${frames} frames of vtest.avi, every frame processed (no drops), CenterNet with ${threads} intra-op threads, ` +
      `fixed interval k, motion gate off; ${rounds} rounds (k ascending, then descending), medians. ` +
      'Output frames/s counts every frame that left the pipeline with boxes (detected or predicted by the tracker).',
    goals: [],
    headline: `output fps at k = ${INTERVALS.join('/')}: ${INTERVALS.map((k) => round(median(fps.get(k)!), 1)).join(' / ')}`,
    tables: [{ columns: ['k', 'frames', 'detector calls', 'output fps', 'speed-up vs k=1', 'ideal speed-up', 'track ms/frame'], rows }],
    figures: { retries, threads, frames, fps: Object.fromEntries(fps), detectorCalls: Object.fromEntries(calls) },
    notes: ['Output frames/s is the steady rate (6th frame to the last). "ideal speed-up" assumes the detector is the only per-frame cost; the gap is what stays per ' +
      'frame (capture, tracking, rules) plus the detector frames\' own overheads.'],
  };
}
