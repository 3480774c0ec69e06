/**
 * The INT8 pipeline for one model: plan (which tensors, which nodes stay float) → calibrate on real
 * frames (one pass, streaming histograms) → ranges by method → QDQ model; plus the FP16 variant and
 * the TensorRT calibration table from the same histograms. `calibrateForModel` and `buildInt8` are
 * split so a benchmark can calibrate once and build every method.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile, copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { decodeModel, encodeModel } from '../convert/onnx/codec.js';
import { compactNames, constantsToInitializers } from '../convert/onnx/passes.js';
import { DataType, isQuantizedModel, type OnnxModel } from '../convert/onnx/model.js';
import { loadModelMetadata, metadataPathFor, type ModelMetadata } from '../../../agent/src/model/metadata.js';
import { calibrate, type CalibrationResult } from './calibrate.js';
import { modelInputs, type FrameSelection } from './frames.js';
import { floatConvWeightsFor, insertQdq, planQuantization, weightRangeFor, type QdqStats, type QuantTarget } from './qdq.js';
import type { WeightRange } from './qmath.js';
import { rangeFromHistogram, type CalibrationMethod, type TensorRange } from './ranges.js';
import { renderTrtCalibrationFlatbuffer, renderTrtCalibrationTable } from './trt-table.js';
import { convertToFp16 } from './fp16.js';
import { prepareForInt8, type PrepareReport } from './prepare.js';
import { chooseFloatActivations } from './sensitivity.js';
import { spatialMeansToGlobalPool } from './global-pool.js';
import { nodeKey } from './graph-info.js';
import { InputError } from '../../../agent/src/util/errors.js';

export interface CalibrationRun extends PrepareReport {
  /** The model file calibrated, and the sha256 of the bytes read (quantizeModel refuses a run of another model). */
  modelPath: string;
  modelSha256: string;
  /** The prepared model the INT8 builds quantize (its weights already on the int8 grid when GPTQ ran). */
  source: OnnxModel;
  /** The model as read: FP16 is converted from this, not from the int8-rounded weights. */
  original: OnnxModel;
  /** `source` before GPTQ: Convs an INT8 build keeps float take their weights from here. */
  unrounded: OnnxModel;
  meta: ModelMetadata;
  inputName: string;
  calibration: CalibrationResult;
  target: QuantTarget;
  /** The weight grid GPTQ rounded onto and the build stores (qdq.weightRangeFor). */
  weightRange: WeightRange;
  exclude: string[];
  calibMs: number;
  /** Spatial ReduceMeans the QDQ build turned into GlobalAveragePool (global-pool.ts). */
  globalPools: number;
}

export interface CalibrateModelOptions {
  modelPath: string;
  frames: FrameSelection;
  target: QuantTarget;
  exclude?: string[];
  bins?: number;
  /** Channel equalization and rescaling before calibration (default true); see prepare.ts. */
  equalize?: boolean;
  /** GPTQ weight rounding (default true); see prepare.ts. */
  gptq?: boolean;
  /** See QuantPlanOptions.weightRange (default: reduced on CPU, full for TensorRT). */
  weightRange?: WeightRange;
  /** false: the build stores one weight scale per tensor, so GPTQ (which rounds per channel) is skipped. */
  perChannel?: boolean;
}

/**
 * `exclude` entries as the keys the plan matches (a node's name, or its first output when unnamed):
 * an entry may name a node or its first output. An entry that names neither is an error, not a no-op.
 */
export function resolveExcludes(model: OnnxModel, exclude: readonly string[]): string[] {
  return exclude.map((e) => {
    const n = model.graph.nodes.find((x) => x.name === e) ?? model.graph.nodes.find((x) => x.outputs[0] === e);
    if (!n) {
      const convs = model.graph.nodes.filter((x) => x.opType === 'Conv').slice(0, 2).map(nodeKey);
      throw new InputError(`--exclude names ${JSON.stringify(e)}, which is neither a node nor a node's first output in the model; give node names (e.g. ${convs.join(', ')})`);
    }
    return nodeKey(n);
  });
}

export async function calibrateForModel(opts: CalibrateModelOptions): Promise<CalibrationRun> {
  // A plain Uint8Array copy: Buffer.slice() returns a view, which tensorToFloat32 (model.ts) would read past.
  const bytes = new Uint8Array(await readFile(opts.modelPath));
  const modelSha256 = createHash('sha256').update(bytes).digest('hex');
  const original = decodeModel(bytes);
  if (isQuantizedModel(original)) throw new InputError(`${opts.modelPath} is already quantized (INT8); quantize its FP32 model instead`);
  // Weights held in Constant nodes (paddle2onnx exports) become initializers, where the passes below look for them.
  constantsToInitializers(original.graph);
  opts = { ...opts, exclude: resolveExcludes(original, opts.exclude ?? []) };
  const meta = await loadModelMetadata(opts.modelPath);
  const inputName = meta.input ?? original.graph.inputs.find((i) => !original.graph.initializers.has(i.name))?.name ?? '';
  const t0 = performance.now();
  const weightRange = weightRangeFor(opts.target, opts.weightRange);
  const prepared = await prepareForInt8(original, { inputName, frames: opts.frames, preprocess: meta.preprocess, exclude: opts.exclude, equalize: opts.equalize, gptq: opts.gptq !== false && opts.perChannel !== false, weightRange, halfScales: opts.target === 'cpu' });
  // A shallow copy: only the node list changes, and `prepared.model` may be `original` itself.
  const source: OnnxModel = { ...prepared.model, graph: { ...prepared.model.graph } };
  const globalPools = spatialMeansToGlobalPool(source);
  // Plan only to learn which tensors to calibrate (both op sets, so one pass serves every build); the
  // folding on CPU renames nothing that is not in the source graph.
  const tensors = new Set<string>();
  for (const ops of ['weighted', 'all'] as const) {
    const plan = planQuantization(source, { target: opts.target, exclude: opts.exclude, ops });
    for (const t of plan.activations) tensors.add(t);
    // The sum or concatenation before a ReLU folded on CPU: a TensorRT table (--trt-table) from this run
    // still needs its range, as it did before those folds (a Conv's ReLU TensorRT fuses, as ever).
    for (const f of plan.foldedTensors) if (f.producer !== 'Conv') tensors.add(f.tensor);
  }
  const calibration = await calibrate({ model: source, inputName, tensors: [...tensors], frames: modelInputs(opts.frames, meta.preprocess), bins: opts.bins });
  return { modelPath: opts.modelPath, modelSha256, source, original, unrounded: prepared.unrounded, meta, inputName, calibration, target: opts.target, weightRange, exclude: opts.exclude ?? [], calibMs: performance.now() - t0, globalPools, ...prepared.report };
}

export interface BuildOptions {
  method: CalibrationMethod;
  percentile?: number;
  perChannel?: boolean;
  /** See QuantPlanOptions.ops. */
  ops?: 'weighted' | 'all';
  /** Activations kept float (from the sensitivity search). */
  keepFloat?: string[];
  /** See QuantPlanOptions.activationType. */
  activationType?: 'int8' | 'uint8';
  /** See QuantPlanOptions.bias (default float: onnxruntime makes the int32 at load). */
  bias?: 'float' | 'int32';
  /** See QuantPlanOptions.floatConvWeights. */
  floatConvWeights?: 'float' | 'int8';
}

export function rangesFor(run: CalibrationRun, opts: BuildOptions): Map<string, TensorRange> {
  const ranges = new Map<string, TensorRange>();
  for (const [t, h] of run.calibration.histograms) ranges.set(t, rangeFromHistogram(h, { method: opts.method, percentile: opts.percentile, asymmetric: run.target === 'cpu' }));
  return ranges;
}

const NAMED_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

export function buildInt8(run: CalibrationRun, opts: BuildOptions): { model: OnnxModel; stats: QdqStats; ranges: Map<string, TensorRange> } {
  const plan = planQuantization(run.source, { target: run.target, exclude: run.exclude, perChannel: opts.perChannel, ops: opts.ops, keepFloat: opts.keepFloat, activationType: opts.activationType, weightRange: run.weightRange, bias: opts.bias, floatConvWeights: opts.floatConvWeights });
  const ranges = rangesFor(run, opts);
  const { model, stats } = insertQdq(plan, ranges);
  // A Conv left float with float weights in the file gets its unrounded weights back: excluded, or reading
  // an activation kept float in a floatConvWeights 'float' or TensorRT build, or with weights GPTQ did
  // not leave on the int8 grid (qdq.ts stores only those exactly as int8).
  for (const n of model.graph.nodes) {
    const w = n.opType === 'Conv' ? model.graph.initializers.get(n.inputs[1]) : undefined;
    const u = run.unrounded.graph.initializers.get(n.inputs[1]);
    if (w?.dataType === DataType.FLOAT && u) model.graph.initializers.set(n.inputs[1], u);
  }
  for (const t of [...ranges.keys()]) if (!plan.activations.includes(t)) ranges.delete(t);
  // A CPU build ships short value names, and only the weighted nodes keep their names: they are what
  // onnxruntime's profiler is read for (where a run's time goes, bench/quantize.ts's split). The
  // CenterNet's other 1100 node names (Q, DQ, Cast, its Transposes) were 0.2% of its FP32 size in an
  // INT8 file that is 27% of it. A TensorRT build keeps every name: its calibration table and engine
  // layers name the model's own tensors.
  if (run.target === 'cpu') compactNames(model.graph, (n) => !NAMED_OPS.has(n.opType));
  model.producerName = 'edge-fleet-quantize';
  model.metadataProps = { ...model.metadataProps, 'edgefleet.precision': 'int8', 'edgefleet.calibration': opts.method, 'edgefleet.target': run.target, 'edgefleet.weightRange': run.weightRange };
  return { model, stats, ranges };
}

export interface QuantizeOptions extends CalibrateModelOptions, BuildOptions {
  outputPath: string;
  /** Also write OUT.fp16.onnx. */
  fp16?: boolean;
  /** Also write OUT.calib.cache (TensorRT text table). */
  trtTable?: boolean;
  /** Mixed precision: keep float the activations the sensitivity search needs to hold this SNR (dB) where the head begins. */
  targetSnrDb?: number;
}

export interface QuantizeReport {
  model: string;
  output: string;
  method: CalibrationMethod;
  target: QuantTarget;
  /** reduced: weights the integer GEMMs of x86 CPUs without VNNI cannot saturate (qmath.weightGridFor); full: ±127 everywhere. */
  weightRange: WeightRange;
  perChannel: boolean;
  ops: 'weighted' | 'all';
  activationType: 'int8' | 'uint8';
  /** How int8-writing Convs store their bias (QuantPlanOptions.bias). */
  bias: 'float' | 'int32';
  /** How Convs kept float by the sensitivity search store their weights (QuantPlanOptions.floatConvWeights); only when it kept some. */
  floatConvWeights?: 'float' | 'int8';
  calibrationFrames: number;
  calibrationMs: number;
  sizeBytes: { fp32: number; int8: number; fp16?: number };
  sizeRatio: number;
  stats: QdqStats;
  excluded: string[];
  fp16Output?: string;
  trtTable?: string;
  /** The same ranges as onnxruntime's TensorRT EP reads them (CalTableFlatBuffers). */
  trtFlatbuffer?: string;
  /** What prepare.ts did to the float model (equalization, rescaling, GPTQ). */
  prepared: PrepareReport & { globalPools: number };
  /** Activations kept float by the sensitivity search. */
  keptFloat: string[];
  /** Named, like keptFloat, as in the FP32 model: a CPU build's file has short value names (passes.compactNames). */
  ranges: Record<string, TensorRange>;
}

/** Where `--fp16` writes the FP16 variant beside OUT.onnx. */
export function fp16PathFor(outputPath: string): string {
  return outputPath.replace(/\.onnx$/, '') + '.fp16.onnx';
}

/**
 * Calibrates and writes the INT8 build (and the FP16 variant and TensorRT tables when asked).
 * `calibrated`: a calibrateForModel run of the same model (its bytes; a run of another file, or for
 * another target, is refused), frames and target to build from instead of
 * calibrating again (several variants from one calibration); it is read, not changed.
 */
export async function quantizeModel(opts: QuantizeOptions, calibrated?: CalibrationRun): Promise<QuantizeReport> {
  if (calibrated && calibrated.target !== opts.target) throw new Error(`quantizeModel: the calibration run was made for target ${calibrated.target}, not ${opts.target}`);
  // GPTQ leaves each Conv's weights on its per-channel grid; one scale per tensor would round them again.
  if (calibrated && opts.perChannel === false && calibrated.gptqConvs > 0) throw new Error('quantizeModel: the calibration run rounded weights per channel (GPTQ); a per-tensor build needs a run made with perChannel false');
  const weightRange = weightRangeFor(opts.target, opts.weightRange);
  if (calibrated && calibrated.weightRange !== weightRange) throw new Error(`quantizeModel: the calibration run rounded weights to the ${calibrated.weightRange} range, not ${weightRange}`);
  if (calibrated) {
    // The run's graph is what gets built, under opts.modelPath's metadata and name: a run of another
    // file would write that other model as this one's INT8 build. Compared by bytes, not by path.
    const sha256 = createHash('sha256').update(await readFile(opts.modelPath)).digest('hex');
    if (sha256 !== calibrated.modelSha256) {
      throw new InputError(`quantizeModel: the calibration run was made from ${calibrated.modelPath} (sha256 ${calibrated.modelSha256.slice(0, 12)}…), not from ${opts.modelPath} (sha256 ${sha256.slice(0, 12)}…); calibrate ${opts.modelPath} itself, or pass no run`);
    }
  }
  const run = calibrated ?? await calibrateForModel(opts);
  let keepFloat: string[] = [];
  if (opts.targetSnrDb !== undefined) {
    keepFloat = await chooseFloatActivations({ model: run.source, inputName: run.inputName, ranges: rangesFor(run, opts), plan: { target: run.target, exclude: run.exclude, ops: opts.ops, activationType: opts.activationType, weightRange: run.weightRange }, frames: opts.frames, preprocess: run.meta.preprocess, targetSnrDb: opts.targetSnrDb });
  }
  const built = buildInt8(run, { ...opts, keepFloat });
  const bytes = encodeModel(built.model);
  await mkdir(dirname(opts.outputPath), { recursive: true });
  await writeFile(opts.outputPath, bytes);
  await copyMeta(opts.modelPath, opts.outputPath);
  const fp32Size = (await readFile(opts.modelPath)).length;
  const report: QuantizeReport = {
    model: opts.modelPath, output: opts.outputPath, method: opts.method, target: opts.target, weightRange: run.weightRange, perChannel: opts.perChannel !== false,
    ops: opts.ops ?? 'all', activationType: opts.target === 'tensorrt' ? 'int8' : opts.activationType ?? 'uint8', bias: opts.bias ?? 'float',
    ...(keepFloat.length > 0 ? { floatConvWeights: floatConvWeightsFor(opts.target, opts.floatConvWeights) } : {}),
    calibrationFrames: run.calibration.frames, calibrationMs: Math.round(run.calibMs),
    sizeBytes: { fp32: fp32Size, int8: bytes.length }, sizeRatio: bytes.length / fp32Size, stats: built.stats, excluded: run.exclude,
    prepared: { foldedAffines: run.foldedAffines, equalizedPairs: run.equalizedPairs, rescaledConvs: run.rescaledConvs, residualStreams: run.residualStreams, gptqConvs: run.gptqConvs, globalPools: run.globalPools }, keptFloat: keepFloat,
    ranges: Object.fromEntries(built.ranges),
  };
  if (opts.fp16) {
    const fp16Path = fp16PathFor(opts.outputPath);
    const fb = encodeModel(convertToFp16(run.original).model);
    await writeFile(fp16Path, fb);
    await copyMeta(opts.modelPath, fp16Path);
    report.fp16Output = fp16Path;
    report.sizeBytes.fp16 = fb.length;
  }
  if (opts.trtTable) {
    const tablePath = opts.outputPath.replace(/\.onnx$/, '') + '.calib.cache';
    const symRun: CalibrationRun = { ...run, target: 'tensorrt' };
    const ranges = rangesFor(symRun, opts);
    await writeFile(tablePath, renderTrtCalibrationTable(ranges));
    report.trtTable = tablePath;
    // onnxruntime's TensorRT EP form of the same ranges (trt_int8_calibration_table_name).
    const fbPath = opts.outputPath.replace(/\.onnx$/, '') + '.calib.flatbuffers';
    await writeFile(fbPath, renderTrtCalibrationFlatbuffer(ranges));
    report.trtFlatbuffer = fbPath;
  }
  return report;
}

/**
 * Puts the model's metadata beside its new artifact, or none: an older file already at that name
 * describes another model (its name, labels, preprocess), and would be published with this one.
 */
export async function copyMeta(modelPath: string, outPath: string): Promise<void> {
  const src = metadataPathFor(modelPath), dest = metadataPathFor(outPath);
  if (existsSync(src)) await copyFile(src, dest);
  else await rm(dest, { force: true });
}
