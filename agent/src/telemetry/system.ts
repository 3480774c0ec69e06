/**
 * Host facts for telemetry: process CPU share, memory, and thermal zones. Temperatures come from the
 * Linux thermal sysfs (`/sys/class/thermal/thermal_zone*\/{type,temp}`, millidegrees Celsius; see
 * https://docs.kernel.org/driver-api/thermal/sysfs-api.html); boards without it report none.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { TELEMETRY_MAX_ZONES } from '../protocol/payloads.js';

export function readTemperaturesC(root = '/sys/class/thermal'): Record<string, number> | undefined {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith('thermal_zone'));
  } catch {
    return undefined; // no thermal sysfs on this host (containers, macOS): not an error
  }
  const out: Record<string, number> = {};
  for (const n of names) {
    try {
      const milli = Number(readFileSync(join(root, n, 'temp'), 'utf8').trim());
      if (!Number.isFinite(milli)) continue;
      const type = readFileSync(join(root, n, 'type'), 'utf8').trim().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 48) || n;
      out[out[type] === undefined ? type : `${type}-${n}`] = Math.round(milli / 100) / 10;
    } catch {
      continue; // zones may refuse reads (EINVAL/EACCES when the sensor is off); skip that zone only
    }
  }
  const zones = Object.entries(out);
  if (zones.length === 0) return undefined;
  // The hottest ones, when the board has more zones than a telemetry message carries (Qualcomm SoCs
  // expose dozens); with every zone, each message was refused and the device sent no telemetry at all.
  return zones.length <= TELEMETRY_MAX_ZONES ? out : Object.fromEntries(zones.sort((a, b) => b[1] - a[1]).slice(0, TELEMETRY_MAX_ZONES));
}

/** Measures process CPU as percent of one core between calls. */
export class CpuMeter {
  private last = process.cpuUsage();
  private lastAtNs = process.hrtime.bigint();

  sample(): { processPercent: number; load1: number } {
    const nowNs = process.hrtime.bigint();
    const u = process.cpuUsage(this.last);
    const wallUs = Number(nowNs - this.lastAtNs) / 1000;
    this.last = process.cpuUsage();
    this.lastAtNs = nowNs;
    const pct = wallUs > 0 ? ((u.user + u.system) / wallUs) * 100 : 0;
    return { processPercent: Math.round(pct * 10) / 10, load1: Math.round(os.loadavg()[0] * 100) / 100 };
  }
}

export function memorySample(): { rssBytes: number; heapUsedBytes: number; systemFreeBytes: number; systemTotalBytes: number } {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, systemFreeBytes: os.freemem(), systemTotalBytes: os.totalmem() };
}
