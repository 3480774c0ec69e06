/**
 * trtexec (JetPack's TensorRT command-line builder, /usr/src/tensorrt/bin/trtexec) command lines and
 * version detection. Flags per the TensorRT developer guide, "trtexec" section:
 * --onnx, --saveEngine, --fp16, --int8 (with a QDQ model the scales come from the Q/DQ nodes:
 * explicit quantization, no calibration cache), --memPoolSize=workspace:<MiB> (TensorRT >= 8.4),
 * --timingCacheFile, and --skipInference (TensorRT >= 8.6; 8.0-8.5 used --buildOnly).
 */
import { existsSync } from 'node:fs';

export interface TrtVersion {
  major: number;
  minor: number;
  patch: number;
}

export function formatVersion(v: TrtVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/**
 * Parses the version from trtexec's banner: `&&&& RUNNING TensorRT.trtexec [TensorRT v8602] ...`
 * (v + major*1000 + minor*100 + patch for 8.x, major*10000 + minor*100 + patch for 10.x, e.g. v100300).
 */
export function parseTrtexecVersion(output: string): TrtVersion | undefined {
  const m = /TensorRT v(\d{4,6})\b/.exec(output);
  if (!m) {
    const dotted = /TensorRT version:?\s*(\d+)\.(\d+)\.(\d+)/i.exec(output);
    return dotted ? { major: +dotted[1], minor: +dotted[2], patch: +dotted[3] } : undefined;
  }
  const n = Number(m[1]);
  if (m[1].length >= 6) return { major: Math.floor(n / 10000), minor: Math.floor(n / 100) % 100, patch: n % 100 };
  return { major: Math.floor(n / 1000), minor: Math.floor(n / 100) % 10, patch: n % 100 };
}

export interface BuildCommandOptions {
  onnxPath: string;
  enginePath: string;
  precision: 'fp32' | 'fp16' | 'int8';
  version: TrtVersion;
  workspaceMiB?: number;
  timingCachePath?: string;
}

export function buildTrtexecArgs(o: BuildCommandOptions): string[] {
  const args = [`--onnx=${o.onnxPath}`, `--saveEngine=${o.enginePath}`];
  if (o.precision === 'fp16') args.push('--fp16');
  // INT8 from a QDQ model: --int8 lets TensorRT honour the Q/DQ scales; --fp16 lets the layers
  // left in float (the detection head) run in half precision instead of fp32.
  if (o.precision === 'int8') args.push('--int8', '--fp16');
  const atLeast = (major: number, minor: number): boolean => o.version.major > major || (o.version.major === major && o.version.minor >= minor);
  if (o.workspaceMiB) args.push(atLeast(8, 4) ? `--memPoolSize=workspace:${o.workspaceMiB}` : `--workspace=${o.workspaceMiB}`);
  if (o.timingCachePath) args.push(`--timingCacheFile=${o.timingCachePath}`);
  args.push(atLeast(8, 6) ? '--skipInference' : '--buildOnly');
  return args;
}

/** Where JetPack installs trtexec; PATH is searched as well. */
export const TRTEXEC_CANDIDATES = ['/usr/src/tensorrt/bin/trtexec', '/usr/bin/trtexec', '/usr/local/bin/trtexec'];

export function findTrtexec(env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): string | undefined {
  if (env.TRTEXEC && exists(env.TRTEXEC)) return env.TRTEXEC;
  const onPath = (env.PATH ?? '').split(':').filter(Boolean).map((d) => `${d}/trtexec`);
  return [...TRTEXEC_CANDIDATES, ...onPath].find((p) => exists(p));
}
