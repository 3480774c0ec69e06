/**
 * Process CPU and memory from /proc (Linux): cumulative CPU time of a pid from /proc/PID/stat
 * (utime + stime, fields 14 and 15, in clock ticks; proc(5)) and resident set from /proc/PID/status.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 on every Linux we ship to). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** Resident set now and its peak (VmRSS, VmHWM), bytes. */
export function memory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

export interface UsageWindow {
  wallS: number;
  cpuS: number;
  /** CPU time over wall time, in % of one core. */
  cpuPercentOfCore: number;
  rssMeanBytes: number;
  rssMaxBytes: number;
  peakRssBytes: number;
}

/** Samples a pid for `windowMs` (memory every `everyMs`). */
export async function sampleUsage(pid: number, windowMs: number, everyMs = 250): Promise<UsageWindow> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  const rss: number[] = [];
  let peak = 0;
  while (performance.now() - t0 < windowMs) {
    const m = memory(pid);
    rss.push(m.rssBytes);
    peak = m.peakRssBytes;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = cpuSeconds(pid) - c0;
  return {
    wallS, cpuS, cpuPercentOfCore: (100 * cpuS) / wallS,
    rssMeanBytes: rss.reduce((a, b) => a + b, 0) / rss.length, rssMaxBytes: Math.max(...rss), peakRssBytes: peak,
  };
}
