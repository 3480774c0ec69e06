/**
 * One model in, one artifact per platform out: `exportModel` writes a TFLite flatbuffer or a Core ML
 * `.mlmodel` next to a copy of the model's metadata and an export report (inputs, outputs, outputs
 * left out and why, sizes, sha256). INT8 TFLite calibrates on real frames first.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { loadModelMetadata, metadataPathFor } from '../../../agent/src/model/metadata.js';
import { modelInputs, type FrameSelection } from '../quantize/frames.js';
import type { CalibrationMethod } from '../quantize/ranges.js';
import { ModelError } from '../../../agent/src/util/errors.js';
import { exportTflite } from './tflite/export.js';
import { tfliteRanges } from './tflite/ranges.js';
import { exportCoreml } from './coreml/export.js';

export type ExportTarget = 'tflite' | 'coreml';
export type ExportPrecision = 'fp32' | 'fp16' | 'int8';

export interface ExportModelOptions {
  modelPath: string;
  outputPath: string;
  target: ExportTarget;
  precision: ExportPrecision;
  outputs?: string[];
  /** Calibration frames, needed for int8 TFLite. */
  calib?: FrameSelection;
  method?: CalibrationMethod;
}

export interface ExportReport {
  target: ExportTarget;
  precision: ExportPrecision;
  output: string;
  sizeBytes: number;
  sha256: string;
  inputs: Array<{ name: string; shape: number[] }>;
  outputs: Array<{ name: string; shape: number[] }>;
  dropped: Array<{ output: string; reason: string }>;
  calibrationFrames?: number;
  notes: string[];
}

export async function exportModel(o: ExportModelOptions): Promise<ExportReport> {
  const bytes = new Uint8Array(await readFile(o.modelPath));
  const notes: string[] = [];
  let out: Uint8Array;
  let inputs: ExportReport['inputs'], outputs: ExportReport['outputs'], dropped: ExportReport['dropped'] = [];
  let calibrationFrames: number | undefined;
  if (o.target === 'tflite') {
    let ranges;
    if (o.precision === 'int8') {
      if (!o.calib) throw new ModelError('INT8 TFLite export calibrates on real frames: pass --calib DIR|VIDEO');
      const meta = await loadModelMetadata(o.modelPath);
      const r = await tfliteRanges({ onnxBytes: bytes, frames: modelInputs(o.calib, meta.preprocess), method: o.method, outputs: o.outputs });
      ranges = r.ranges;
      calibrationFrames = r.frames;
      notes.push('INT8: activations int8 per tensor, weights int8 per channel; the detection head that produces the outputs stays float');
    }
    const r = exportTflite(bytes, { precision: o.precision, outputs: o.outputs, ranges });
    out = r.bytes;
    ({ inputs, outputs, dropped } = r);
    notes.push(`${r.transposesRemoved} ONNX Transposes folded into NHWC layout, ${r.transposesLeft} TRANSPOSE ops left; ${r.fusedActivations} activations fused`);
  } else {
    const r = exportCoreml(bytes, { precision: o.precision, outputs: o.outputs });
    out = r.bytes;
    inputs = r.model.inputs;
    outputs = r.model.outputs;
    notes.push('Core ML blobs are CHW; outputs are the head maps before the final Reshape (see docs/ios-bridge.md)');
  }
  if (dropped.length) notes.push(`outputs left out: ${dropped.map((d) => d.output).join(', ')} (decode them on the device from the exported outputs)`);
  await writeFile(o.outputPath, out);
  const metaIn = metadataPathFor(o.modelPath);
  const metaOut = metadataPathFor(o.outputPath);
  if (existsSync(metaIn) && metaIn !== metaOut) await copyFile(metaIn, metaOut);
  return {
    target: o.target, precision: o.precision, output: o.outputPath, sizeBytes: out.length,
    sha256: createHash('sha256').update(out).digest('hex'), inputs, outputs, dropped, calibrationFrames, notes,
  };
}
