/**
 * Machine and version facts recorded with every bench result, so a figure is never read without
 * the hardware, the load at the time and the versions that produced it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release, platform, arch } from 'node:os';
import { join } from 'node:path';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  os: string;
  /** 1-minute load average when the bench started (the CPU is shared). */
  load1AtStart: number;
  node: string;
  versions: Record<string, string>;
}

/** Version of an installed npm package, or "absent". */
export function packageVersion(name: string, root = process.cwd()): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'absent';
  }
}

/** First line of a tool's version output matched by `pattern`, or "absent". */
function toolVersion(cmd: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return pattern.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    // mosquitto -h exits with status 3 after printing its version.
    const out = String((err as { stdout?: string }).stdout ?? '');
    return pattern.exec(out)?.[1] ?? 'absent';
  }
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryBytes: totalmem(),
    os: `${platform()} ${release()} ${arch()}`,
    load1AtStart: Math.round(loadavg()[0] * 100) / 100,
    node: process.version,
    versions: {
      'onnxruntime-node': packageVersion('onnxruntime-node'),
      sharp: packageVersion('sharp'),
      'gstreamer-superficial': packageVersion('gstreamer-superficial'),
      gstreamer: toolVersion('gst-launch-1.0', ['--version'], /GStreamer ([\d.]+)/),
      aedes: packageVersion('aedes'),
      mqtt: packageVersion('mqtt'),
      mosquitto: toolVersion(process.env.EF_MOSQUITTO ?? '/usr/sbin/mosquitto', ['-h'], /mosquitto version ([\d.]+)/),
    },
  };
}
