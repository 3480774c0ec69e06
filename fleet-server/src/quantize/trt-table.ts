/**
 * TensorRT INT8 calibration cache ("calibration table"), text form, from our calibrated ranges:
 * first line `TRT-<version>-EntropyCalibration2`, then one `tensorName: hex` line per tensor, the
 * hex being the big-endian bits of the float32 scale amax/127 (TensorRT Developer Guide, "INT8
 * Calibration Using C++"/IInt8EntropyCalibrator2 readCalibrationCache; the format is what
 * trtexec --calib and the samples' CalibrationTable files hold). TensorRT only uses symmetric
 * ranges, so amax = max(|min|, |max|). Tensor names are the ONNX value names, which TensorRT's
 * ONNX parser keeps as ITensor names. TensorRT 10 deprecates implicit calibration in favour of QDQ.
 */
import type { TensorRange } from './ranges.js';

export interface TrtTableOptions {
  /** TensorRT version as it appears in the header: 8601 for 8.6.1. */
  trtVersion?: number;
  algorithm?: 'EntropyCalibration2' | 'MinMaxCalibration' | 'LegacyCalibration';
}

export function floatHex(x: number): string {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, false);
  return b.getUint32(0, false).toString(16).padStart(8, '0');
}

export function renderTrtCalibrationTable(ranges: Map<string, TensorRange>, opts: TrtTableOptions = {}): string {
  const lines = [`TRT-${opts.trtVersion ?? 8601}-${opts.algorithm ?? 'EntropyCalibration2'}`];
  for (const [name, r] of ranges) {
    const amax = Math.max(Math.abs(r.min), Math.abs(r.max));
    lines.push(`${name}: ${floatHex(amax > 0 ? amax / 127 : 1)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function parseTrtCalibrationTable(text: string): { header: string; scales: Map<string, number> } {
  const [header, ...rest] = text.trim().split('\n');
  const scales = new Map<string, number>();
  const dv = new DataView(new ArrayBuffer(4));
  for (const line of rest) {
    const i = line.lastIndexOf(': ');
    if (i < 0) continue;
    dv.setUint32(0, parseInt(line.slice(i + 2), 16), false);
    scales.set(line.slice(0, i), dv.getFloat32(0, false));
  }
  return { header, scales };
}
