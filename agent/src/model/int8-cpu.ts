/**
 * Whether this CPU runs a full-range INT8 ONNX model as it was gated.
 *
 * onnxruntime's uint8×int8 GEMM on x86 without VNNI (AVX2 or AVX-512BW alone) multiplies with
 * VPMADDUBSW, which adds two uint8×int8 products into a saturating int16: with weights up to ±127
 * the sums clip (onnxruntime documents the same and quantizes with `reduce_range` for it). VNNI's
 * VPDPBUSD sums into int32 and ARM's int8 kernels do not saturate. `fleetctl model quantize` therefore
 * stores by default weights whose pairs cannot saturate (a pair sum of at most 128 steps, 7-bit where
 * it cannot pair them) and records the choice as `edgefleet.weightRange` in the model's
 * metadata_props (fleet-server/src/quantize/qmath.ts). A `--weight-range full` build, meant for ARM
 * or VNNI boxes, still loads and runs on such an x86 CPU, just less accurately than its gate measured:
 * measured on an AVX2 EPYC, a full-range BlazeFace build lost 16.7 F1 points. Nothing fails, so the
 * agent says it in its log.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { readMetadataProps } from '../../../fleet-server/src/convert/onnx/codec.js';

/** The int8 dot-product features of this CPU, as /proc/cpuinfo names them (x86); empty elsewhere. */
export function int8CpuFlags(cpuinfo?: string): string[] {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return [];
    }
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  return ['avx2', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8'].filter((f) => flags.has(f));
}

export interface CpuInt8 {
  arch: string;
  /** From int8CpuFlags(); undefined when they could not be read (then nothing is claimed). */
  flags: string[] | undefined;
}

/** True when onnxruntime's CPU int8 GEMM saturates full-range weights here: x86 with flags read and no VNNI. */
export function saturatesFullRangeInt8(cpu: CpuInt8): boolean {
  if (cpu.arch !== 'x64' && cpu.arch !== 'ia32') return false;
  if (!cpu.flags || cpu.flags.length === 0) return false;
  return !cpu.flags.includes('avx512_vnni') && !cpu.flags.includes('avx_vnni');
}

let hostCpu: CpuInt8 | undefined;

/** This machine's, read once per process (every model load asks). */
function thisCpu(): CpuInt8 {
  if (!hostCpu) {
    const flags = process.platform === 'linux' ? int8CpuFlags() : [];
    hostCpu = { arch: process.arch, flags: flags.length ? flags : undefined };
  }
  return hostCpu;
}

/**
 * The warning for an ONNX model run on onnxruntime's CPU provider when it is a full-range INT8 build
 * and this CPU saturates such weights; undefined otherwise (and always on ARM or VNNI CPUs, where the
 * file is not even read).
 */
export async function fullRangeInt8Warning(modelPath: string, provider: string, cpu: CpuInt8 = thisCpu()): Promise<string | undefined> {
  if (provider !== 'cpu' || !/\.onnx$/i.test(modelPath) || !saturatesFullRangeInt8(cpu)) return undefined;
  let props: Record<string, string>;
  try {
    props = readMetadataProps(new Uint8Array(await readFile(modelPath)));
  } catch {
    return undefined; // onnxruntime has just loaded it; a file we cannot scan is not this check's to refuse
  }
  if (props['edgefleet.precision'] !== 'int8' || props['edgefleet.weightRange'] !== 'full') return undefined;
  return `${modelPath} is an INT8 build with full-range weights (fleetctl model quantize --weight-range full), and this x86 CPU has no VNNI (flags: ${cpu.flags!.join(' ')}): ` +
    'onnxruntime\'s int8 kernels here saturate such weights, so its detections are less accurate than the accuracy gate measured. ' +
    'Publish a build with the default --weight-range reduced for x86 boxes without VNNI, or FP16/FP32';
}
