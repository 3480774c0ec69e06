/**
 * One model in, one artifact per platform out: `exportModel` writes a TFLite flatbuffer or a Core ML
 * `.mlmodel` next to a copy of the model's metadata and an export report (inputs, outputs, outputs
 * left out and why, sizes, sha256). INT8 TFLite calibrates on real frames first.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../../../agent/src/ota/fs-atomic.js';
import { basename, dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { loadModelMetadata, metadataPathFor, type ModelMetadata, type PreprocessSpec } from '../../../agent/src/model/metadata.js';
import { decoderOutputNames, type DecoderSpec } from '../../../agent/src/decode/spec.js';
import { modelInputSize } from '../../../agent/src/preprocess/tensor.js';
import type { FrameSelection } from '../quantize/frames.js';
import type { CalibrationMethod } from '../quantize/ranges.js';
import { ModelError } from '../../../agent/src/util/errors.js';
import { exportTflite, fedInputShape, type TfliteExportOptions } from './tflite/export.js';
import { decodeModel } from '../convert/onnx/codec.js';
import { tfliteKeepFloat, tfliteRanges } from './tflite/ranges.js';
import { chooseFloatIslands } from './tflite/islands.js';
import { modelInputs } from '../quantize/frames.js';
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
  /** INT8 TFLite mixed precision: keep float the activations the sensitivity search needs to hold this SNR (dB) at the head. */
  targetSnrDb?: number;
  /** INT8 TFLite float islands (int8.ts): 'auto' (default) keeps them only where they measurably help (islands.ts). */
  floatIslands?: 'auto' | 'on' | 'off';
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

/**
 * The preprocess for an exported file, whose input shape is static (fedInputShape): every frame fills
 * it, so the dynamic-size maxUpscale does not carry over, to its metadata or to its calibration frames.
 */
function staticPreprocess(p: PreprocessSpec): PreprocessSpec {
  return p.maxUpscale === undefined ? p : { ...p, maxUpscale: undefined };
}

export async function exportModel(o: ExportModelOptions): Promise<ExportReport> {
  const bytes = new Uint8Array(await readFile(o.modelPath));
  const notes: string[] = [];
  // TFLite and Core ML shapes are static: the input's dynamic sizes are the ones the agent feeds (the metadata's preprocess).
  const metaIn = metadataPathFor(o.modelPath);
  const graph = decodeModel(Uint8Array.from(bytes)).graph;
  const sourceMeta = existsSync(metaIn) ? await loadModelMetadata(o.modelPath) : undefined;
  const inputName = sourceMeta?.input ?? graph.inputs.find((i) => !graph.initializers.has(i.name))?.name;
  const inputShapes = sourceMeta && inputName ? { [inputName]: fedInputShape(sourceMeta.preprocess) } : undefined;
  let out: Uint8Array;
  let inputs: ExportReport['inputs'], outputs: ExportReport['outputs'], dropped: ExportReport['dropped'] = [];
  let calibrationFrames: number | undefined;
  let renamed: Map<string, string> | undefined;
  if (o.target === 'tflite') {
    let ranges: TfliteExportOptions['ranges'];
    let converted: Uint8Array = bytes;
    let unrounded: Uint8Array | undefined;
    let keepFloat: string[] | undefined;
    let meta: ModelMetadata | undefined;
    if (o.precision === 'int8') {
      if (!o.calib) throw new ModelError('INT8 TFLite export calibrates on real frames: pass --calib DIR|VIDEO');
      meta = await loadModelMetadata(o.modelPath);
      meta = { ...meta, preprocess: staticPreprocess(meta.preprocess) };
      const r = await tfliteRanges({ onnxBytes: bytes, frames: o.calib, preprocess: meta.preprocess, method: o.method, outputs: o.outputs });
      ranges = r.ranges;
      converted = r.onnxBytes;
      unrounded = r.unroundedBytes;
      calibrationFrames = r.frames;
      notes.push('INT8: activations int8 per tensor, weights int8 per channel; the detection head that produces the outputs stays float');
      if (r.prepared) notes.push(`INT8: ${r.prepared.foldedAffines} affine ops folded into Convs, ${r.prepared.equalizedPairs} Conv pairs equalized, ${r.prepared.rescaledConvs} Convs rescaled across hard-swish, ${r.prepared.residualStreams} residual streams rescaled, ${r.prepared.gptqConvs} Convs' weights rounded by GPTQ on the calibration frames`);
      if (o.targetSnrDb !== undefined) {
        keepFloat = await tfliteKeepFloat(converted, o.calib, meta.preprocess, o.targetSnrDb);
        notes.push(`INT8 mixed precision (--target-snr ${o.targetSnrDb}): ${keepFloat.length} activations kept float with the ops reading them`);
      }
    }
    const build = (maxAmplification?: number) => exportTflite(converted, { precision: o.precision, outputs: o.outputs, inputShapes, ranges, keepFloat, unroundedOnnx: unrounded, maxAmplification });
    let r = build(o.floatIslands === 'off' ? Infinity : undefined);
    if (meta && o.calib && (o.floatIslands ?? 'auto') === 'auto') {
      const without = build(Infinity);
      if (without.floatIslands < r.floatIslands) {
        const frames = [];
        for await (const f of modelInputs({ ...o.calib, maxFrames: 2 }, meta.preprocess)) frames.push(f);
        const fp32 = exportTflite(bytes, { precision: 'fp32', outputs: o.outputs, inputShapes }).bytes;
        const c = await chooseFloatIslands({ fp32, withIslands: r.bytes, withoutIslands: without.bytes, frames, inputName: meta.input ?? r.inputs[0].name });
        notes.push(`INT8 float islands: ${r.floatIslands - without.floatIslands} ops float would make the file ${(r.bytes.length / without.bytes.length).toFixed(2)}× larger for ${c.worstWithoutDb.toFixed(1)} → ${c.worstWithDb.toFixed(1)} dB at the worst output (${frames.length} calibration frames, LiteRT.js): ${c.keep ? 'kept' : 'left out'} (--float-islands on|off decides instead)`);
        if (!c.keep) r = without;
      }
    }
    out = r.bytes;
    ({ inputs, outputs, dropped } = r);
    notes.push(`${r.transposesRemoved} ONNX Transposes folded into NHWC layout, ${r.transposesLeft} TRANSPOSE ops left; ${r.fusedActivations} activations fused`);
  } else {
    const r = exportCoreml(bytes, { precision: o.precision, outputs: o.outputs, inputShapes });
    out = r.bytes;
    inputs = r.model.inputs;
    outputs = r.model.outputs;
    renamed = coremlOutputMap(r.model.metadata);
    notes.push('Core ML blobs are CHW; outputs are the head maps before the final Reshape (see docs/ios-bridge.md)');
  }
  if (dropped.length) notes.push(`outputs left out: ${dropped.map((d) => d.output).join(", ")}`);
  // `-o NEW_DIR/model.tflite` is the usual way to give an export its own directory.
  await mkdir(dirname(resolve(o.outputPath)), { recursive: true });
  const metaOut = metadataPathFor(o.outputPath);
  if (sourceMeta) {
    const meta = sourceMeta;
    const sourceOutputs = graph.outputs.map((x) => x.name);
    // Core ML blobs are CHW without the batch axis.
    const shapes = o.target === 'coreml' ? outputs.map((x) => ({ name: x.name, shape: [1, ...x.shape] })) : outputs;
    const decoder = decoderForExport(meta, sourceOutputs, shapes, o.target === 'coreml' ? 'nchw' : 'nhwc', renamed);
    if (decoder.note) notes.push(decoder.note);
    if (metaIn === metaOut && decoder.spec !== meta.decoder) {
      // model.onnx and model.tflite in one directory would share model.meta.json, but need different decoders.
      throw new ModelError(`${o.outputPath} would share ${metaOut} with ${o.modelPath}, but the export needs another decoder (${decoder.spec.type}); write it into another directory (-o OTHER/${basename(o.outputPath)})`);
    }
    const { maxUpscale } = meta.preprocess;
    const preprocess = staticPreprocess(meta.preprocess);
    if (maxUpscale !== undefined && metaIn === metaOut) {
      throw new ModelError(`${o.outputPath} would share ${metaOut} with ${o.modelPath}, but its input has a static shape and that metadata's preprocess.maxUpscale shrinks the input per frame; write it into another directory (-o OTHER/${basename(o.outputPath)})`);
    }
    if (maxUpscale !== undefined) {
      const fed = modelInputSize(preprocess);
      notes.push(`preprocess.maxUpscale left out: the ${o.target} input is a static ${fed.width}×${fed.height}, which every frame fills`);
    }
    writeWhole(o.outputPath, out);
    if (metaIn !== metaOut) await writeMetadata(o.outputPath, metaOut, `${JSON.stringify({ ...meta, preprocess, decoder: decoder.spec }, null, 2)}\n`);
  } else {
    writeWhole(o.outputPath, out);
    // An older export's metadata would describe this file's inputs, outputs and decoder wrongly.
    if (existsSync(metaOut)) {
      await rm(metaOut);
      notes.push(`${o.modelPath} has no metadata, so the older ${metaOut} (another model's) was removed; publish needs one: write it, or import the model with fleetctl model import`);
    }
  }
  return {
    target: o.target, precision: o.precision, output: o.outputPath, sizeBytes: out.length,
    sha256: createHash('sha256').update(out).digest('hex'), inputs, outputs, dropped, calibrationFrames, notes,
  };
}

/**
 * A file written whole or not at all (fs-atomic.ts: temp file, every byte, fsync, rename), so a full
 * disk leaves the previous export in place instead of a truncated model beside its older metadata.
 */
function writeWhole(path: string, data: Uint8Array | string): void {
  writeFileAtomic(path, typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** The metadata after its artifact; if it cannot be written, the older one goes, since it describes another model. */
async function writeMetadata(artifactPath: string, metaPath: string, text: string): Promise<void> {
  try {
    writeWhole(metaPath, text);
  } catch (err) {
    await rm(metaPath, { force: true });
    throw new ModelError(`Wrote ${artifactPath} but not its metadata ${metaPath} (${(err as Error).message}); the older ${metaPath} was removed, as it describes another model. Free the space and export again`, { cause: err });
  }
}

/**
 * Core ML: the ONNX outputs the artifact holds under another name, ONNX name → Core ML name. An ONNX
 * output made by a final Reshape is the head map before it (from-tflite.ts), which the bridge turns
 * back into the ONNX output by the transpose and reshape in its `output:<name>` metadata entry.
 */
export function coremlOutputMap(metadata: Readonly<Record<string, string>>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith('output:')) map.set((JSON.parse(value) as { onnxOutput: string }).onnxOutput, key.slice('output:'.length));
  }
  return map;
}

/** The decoder reading the artifact's names for the ONNX outputs it names (the same object when none is renamed). */
function renameDecoderOutputs(spec: DecoderSpec, renamed: ReadonlyMap<string, string>, firstOutput: string | undefined): DecoderSpec {
  const to = (n: string): string => renamed.get(n) ?? n;
  let next: DecoderSpec;
  switch (spec.type) {
    case 'blazeface': next = { ...spec, scoreOutputs: spec.scoreOutputs.map(to), boxOutputs: spec.boxOutputs.map(to) }; break;
    case 'centernet-heads': next = { ...spec, heatmap: to(spec.heatmap), boxes: to(spec.boxes) }; break;
    default: {
      // A decoder without `output` reads the first output; named, it survives a new output order.
      const read = spec.output ?? firstOutput;
      next = read !== undefined && renamed.has(read) ? { ...spec, output: to(read) } : spec;
    }
  }
  return decoderOutputNames(next).join('\n') === decoderOutputNames(spec).join('\n') ? spec : next;
}

/**
 * The decoder the exported artifact needs. When the export kept the outputs the model's decoder
 * reads, it is unchanged. Outputs the artifact holds under another name (`renamed`, ONNX name →
 * artifact name: Core ML's head maps before a final Reshape) are read by that name. A CenterNet
 * whose detections output was left out (its TopK/Gather tail has no mapping) is decoded from its
 * heads instead: the heatmap and the 4-side box map, stride = model input height / heatmap height.
 * Anything else keeps its decoder and says which outputs are missing.
 */
export function decoderForExport(meta: ModelMetadata, sourceOutputs: readonly string[], outputs: ReadonlyArray<{ name: string; shape: number[] }>, layout: 'nhwc' | 'nchw', renamed?: ReadonlyMap<string, string>): { spec: DecoderSpec; note?: string } {
  const names = new Set(outputs.map((x) => x.name));
  const spec = renamed?.size ? renameDecoderOutputs(meta.decoder, renamed, sourceOutputs[0]) : meta.decoder;
  const read = decoderOutputNames(spec);
  // A decoder without output names reads the first output: it must still be the source's first.
  const missing = read.length ? read.filter((n) => !names.has(n)) : outputs[0]?.name === sourceOutputs[0] ? [] : [sourceOutputs[0] ?? 'the first output'];
  if (missing.length === 0 && spec === meta.decoder) return { spec };
  if (missing.length === 0) {
    const pairs = [...renamed!].filter(([, to]) => read.includes(to)).map(([from, to]) => `${to} (${from})`);
    return { spec, note: `decoder: ${spec.type} reads the artifact's ${pairs.join(', ')}, each after the transpose and reshape in its output:<name> metadata` };
  }
  if (meta.decoder.type === 'centernet') {
    const channels = (s: number[]) => (layout === 'nhwc' ? s[3] : s[1]);
    const rows = (s: number[]) => (layout === 'nhwc' ? s[1] : s[2]);
    const four = outputs.filter((x) => x.shape.length === 4 && channels(x.shape) === 4);
    const maps = outputs.filter((x) => x.shape.length === 4 && channels(x.shape) !== 4 && rows(x.shape) === rows(four[0]?.shape ?? []));
    const cols = (sh: number[]) => (layout === 'nhwc' ? sh[2] : sh[3]);
    // The size the model really sees (rounded up to preprocess.multipleOf, as the agent feeds it).
    const input = modelInputSize(meta.preprocess);
    const stride = maps.length === 1 ? input.height / rows(maps[0].shape) : NaN;
    // One whole-pixel stride on both axes, or the boxes would drift across the frame.
    const strideOk = Number.isInteger(stride) && input.width / cols(maps[0]?.shape ?? []) === stride;
    if (four.length === 1 && maps.length === 1 && strideOk) {
      const { scoreThreshold, iouThreshold, maxDetections } = meta.decoder;
      const spec: DecoderSpec = {
        type: 'centernet-heads', heatmap: maps[0].name, boxes: four[0].name, layout,
        stride, topK: 100, scoreThreshold, iouThreshold, maxDetections,
      };
      return { spec, note: `decoder: centernet-heads on ${maps[0].name} and ${four[0].name} (stride ${spec.stride}) in place of the graph's own decoding tail` };
    }
  }
  return { spec: meta.decoder, note: `the metadata's ${meta.decoder.type} decoder reads ${missing.join(', ')}, which this artifact does not have: decode its outputs on the device` };
}
