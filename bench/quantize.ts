/**
 * INT8 quantization benchmark: for each default model, calibrate once on real frames, build one
 * INT8 QDQ model per calibration method plus the FP16 variant, and measure side by side in one run
 * (same process, same thread count, alternating runs): file size ratio, CPU speed ratio
 * (FP32 latency / candidate latency, onnxruntime-node CPU EP, 1 intra-op thread) and the mAP@0.5
 * drop against FP32 on held-out frames (agreement with FP32's detections; no labels ship with the
 * sample assets). Writes bench/results/quantize.json; `renderQuantizeTable` renders the docs table.
 *
 *   npx tsx bench/quantize.ts [--frames 16] [--runs 10]
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { encodeModel } from '../fleet-server/src/convert/onnx/codec.js';
import { intAttr, type OnnxModel } from '../fleet-server/src/convert/onnx/model.js';
import { calibrateForModel, buildInt8, copyMeta, rangesFor } from '../fleet-server/src/quantize/quantize.js';
import { chooseFloatActivations } from '../fleet-server/src/quantize/sensitivity.js';

const MIXED_TARGET_SNR_DB = 30;
import { convertToFp16 } from '../fleet-server/src/quantize/fp16.js';
import { evaluateModels } from '../fleet-server/src/quantize/evaluate.js';
import { modelInputs, type FrameSelection } from '../fleet-server/src/quantize/frames.js';
import { int8CpuFlags } from '../agent/src/model/int8-cpu.js';
import { decoderFetches, type DecoderSpec } from '../agent/src/decode/spec.js';
import type { CalibrationMethod } from '../fleet-server/src/quantize/ranges.js';

export interface QuantizeBenchRow {
  variant: 'fp16' | `int8-${CalibrationMethod}` | 'int8-minmax-mixed';
  sizeRatio: number;
  speedRatio: number;
  fp32Ms: number;
  candidateMs: number;
  agreementMap: number;
  mapDrop: number;
  /** 95% interval of mapDrop over the evaluated frames (evaluate's agreementMapCi95); absent in results from before it. */
  mapDropCi95?: [number, number];
  /** F1 drop at the metadata's score threshold (the publish gate's second limit); absent in results from before it. */
  f1Drop?: number;
  /**
   * This variant's agreement mAP minus the minmax build's on the same frames, with its paired 95% interval
   * (evaluate --compare: ap.ts pairedBootstrapMeanApDifference); absent for minmax itself and in results from before it.
   */
  vsMinmax?: { difference: number; ci95: [number, number] };
}

/** Where one run's time goes (ORT's per-node profiler, ms per run): depthwise Convs, other Convs, everything else. */
export interface QuantizeTimeSplit {
  variant: 'fp32' | 'int8-minmax';
  depthwiseMs: number;
  convMs: number;
  otherMs: number;
}

export interface QuantizeBenchModel {
  model: string;
  fp32Bytes: number;
  calibration: { source: string; frames: number };
  evaluation: { source: string; frames: number };
  rows: QuantizeBenchRow[];
  timeSplit?: QuantizeTimeSplit[];
}

export interface QuantizeBenchResults {
  bench: 'quantize';
  createdAt: string;
  /** `int8Flags`: the CPU's int8 dot-product features from /proc/cpuinfo (absent in results from before it). */
  machine: { cpu: string; cores: number; node: string; onnxruntime: string; int8Flags?: string[] };
  /** The weight range of the INT8 builds (absent in results from before it: those were full range). */
  weightRange?: 'reduced' | 'full';
  goals: { sizeRatioMax: number; speedRatioMin: number; mapDropMax: number };
  models: QuantizeBenchModel[];
}

const MODELS: { path: string; calib: FrameSelection; evalSel: FrameSelection }[] = [
  // Calibrated as `fleetctl model quantize` does by default (32 frames, every 10th); evaluated on 96
  // held-out frames (3 + 8k is odd, 10k even): on 24, one rare box moved the class mean by several points.
  { path: 'assets/models/coco-centernet/model.onnx', calib: { source: 'assets/video/vtest.avi', maxFrames: 32 }, evalSel: { source: 'assets/video/vtest.avi', maxFrames: 96, stride: 8, offset: 3 } },
  // Six group photos are all the face images the sample assets have: calibration and evaluation share them.
  { path: 'assets/models/blazeface-back/model.onnx', calib: { source: 'assets/images/faces', maxFrames: 6 }, evalSel: { source: 'assets/images/faces', maxFrames: 6 } },
];

/** Runs as the agent's worker makes them: fetching only what the model's decoder reads (decoderFetches). */
async function latencies(paths: string[], input: { name: string; tensor: ort.Tensor }, runs: number, decoder: DecoderSpec): Promise<number[]> {
  const sessions = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' })));
  const times = paths.map(() => [] as number[]);
  const runOnce = (s: ort.InferenceSession) => {
    const fetches = decoderFetches(decoder, s.outputNames);
    return fetches ? s.run({ [input.name]: input.tensor }, fetches) : s.run({ [input.name]: input.tensor });
  };
  for (const s of sessions) await runOnce(s);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const t0 = performance.now();
      await runOnce(sessions[k]);
      times[k].push(performance.now() - t0);
    }
  }
  for (const s of sessions) await s.release();
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

/**
 * Names ORT may give a depthwise Conv (group = output channels > 1) of the models the profiled sessions
 * were built from: its own, its output's, and those of an activation fused into it.
 */
export function depthwiseConvNames(models: OnnxModel[]): Set<string> {
  const names = new Set<string>();
  for (const m of models) {
    for (const n of m.graph.nodes) {
      const group = n.opType === 'Conv' ? intAttr(n, 'group', 1) : 1;
      if (group <= 1 || group !== m.graph.initializers.get(n.inputs[1])?.dims[0]) continue;
      names.add(n.name).add(n.outputs[0]);
      for (const c of m.graph.nodes) if (c.inputs[0] === n.outputs[0] && ['Relu', 'Clip', 'Sigmoid', 'HardSigmoid'].includes(c.opType)) names.add(c.name).add(c.outputs[0]);
    }
  }
  return names;
}

/** ORT's per-node profile of `runs` runs, split into depthwise Convs, other Convs (Conv, FusedConv, QLinearConv) and the rest. */
export async function timeSplit(path: string, input: { name: string; tensor: ort.Tensor }, depthwise: Set<string>, runs: number): Promise<Omit<QuantizeTimeSplit, 'variant'>> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-qprof-'));
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: join(dir, 'p') });
  try {
    await session.run({ [input.name]: input.tensor });
    for (let r = 0; r < runs; r++) await session.run({ [input.name]: input.tensor });
    session.endProfiling();
    const file = readdirSync(dir).find((n) => n.endsWith('.json'));
    if (!file) throw new Error(`onnxruntime wrote no profile into ${dir}`);
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
    const out = { depthwiseMs: 0, convMs: 0, otherMs: 0 };
    const seen = new Set<string>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      // The first (warm-up) run allocates: each node's first event is left out.
      if (!seen.has(e.name)) { seen.add(e.name); continue; }
      const ms = e.dur / 1000 / runs;
      // ORT keeps a fused or re-laid-out node's name, sometimes with a "_token_N" or "_nchwc" suffix.
      const base = e.name.slice(0, -'_kernel_time'.length).replace(/(_token_\d+|_nchwc)$/, '');
      if (!/Conv$/.test(e.args?.op_name ?? '')) out.otherMs += ms;
      else if (depthwise.has(base)) out.depthwiseMs += ms;
      else out.convMs += ms;
    }
    return out;
  } finally {
    await session.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchModel(path: string, calib: FrameSelection, evalSel: FrameSelection, runs: number, dir: string): Promise<QuantizeBenchModel> {
  const run = await calibrateForModel({ modelPath: path, frames: calib, target: 'cpu' });
  const fp32Bytes = readFileSync(path).length;
  const variants: { variant: QuantizeBenchRow['variant']; file: string; bytes: number }[] = [];
  const write = async (variant: QuantizeBenchRow['variant'], bytes: Uint8Array): Promise<void> => {
    const file = join(dir, `${run.meta.name}-${variant}.onnx`);
    writeFileSync(file, bytes);
    await copyMeta(path, file);
    variants.push({ variant, file, bytes: bytes.length });
  };
  for (const method of ['minmax', 'entropy', 'percentile'] as const) await write(`int8-${method}`, encodeModel(buildInt8(run, { method }).model));
  // Mixed precision: the sensitivity search keeps float what the 20 dB target at the head needs.
  const keepFloat = await chooseFloatActivations({ model: run.source, inputName: run.inputName, ranges: rangesFor(run, { method: 'minmax' }), plan: { target: 'cpu', ops: 'all' }, frames: calib, preprocess: run.meta.preprocess, targetSnrDb: MIXED_TARGET_SNR_DB });
  await write('int8-minmax-mixed', encodeModel(buildInt8(run, { method: 'minmax', keepFloat }).model));
  await write('fp16', encodeModel(convertToFp16(run.original).model));
  let first: { name: string; tensor: ort.Tensor } | undefined;
  for await (const x of modelInputs({ ...evalSel, maxFrames: 1 }, run.meta.preprocess)) first = { name: run.inputName, tensor: new ort.Tensor(x.dtype, x.data, x.dims) };
  if (!first) throw new Error(`no frame from ${evalSel.source}`);
  const ms = await latencies([path, ...variants.map((v) => v.file)], first, runs, run.meta.decoder);
  const depthwise = depthwiseConvNames([run.original, run.source]);
  const minmax = variants.find((v) => v.variant === 'int8-minmax');
  const split: QuantizeTimeSplit[] = [{ variant: 'fp32', ...(await timeSplit(path, first, depthwise, runs)) }];
  if (minmax) split.push({ variant: 'int8-minmax', ...(await timeSplit(minmax.file, first, depthwise, runs)) });
  const rows: QuantizeBenchRow[] = [];
  let evalFrames = 0;
  for (const [k, v] of variants.entries()) {
    // Each other build is also scored against the minmax build on the same frames (paired).
    const ev = await evaluateModels({ reference: path, candidate: v.file, data: evalSel, ...(minmax && v !== minmax ? { compare: minmax.file } : {}) });
    evalFrames = ev.frames;
    // comparison.difference is minmax − this variant: turned round to this variant − minmax.
    const c = ev.comparison;
    const vsMinmax = c ? { difference: -c.difference, ci95: [-c.differenceCi95[1], -c.differenceCi95[0]] as [number, number] } : undefined;
    rows.push({ variant: v.variant, sizeRatio: v.bytes / fp32Bytes, speedRatio: ms[0] / ms[k + 1], fp32Ms: ms[0], candidateMs: ms[k + 1], agreementMap: ev.agreementMap, mapDrop: ev.mapDrop, mapDropCi95: [100 - ev.agreementMapCi95[1], 100 - ev.agreementMapCi95[0]], f1Drop: ev.atThreshold.f1Drop, ...(vsMinmax ? { vsMinmax } : {}) });
  }
  return { model: run.meta.name, fp32Bytes, calibration: { source: calib.source, frames: run.calibration.frames }, evaluation: { source: evalSel.source, frames: evalFrames }, rows, timeSplit: split };
}

const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${f(x, 1)}`;

/** "model a → b ms (r×), ..." for one column of the FP32 and INT8 time splits. */
function splitText(results: QuantizeBenchResults, key: 'convMs' | 'depthwiseMs'): string {
  return results.models.flatMap((m) => {
    const fp = m.timeSplit?.find((t) => t.variant === 'fp32'), q = m.timeSplit?.find((t) => t.variant === 'int8-minmax');
    return fp && q ? [`${m.model} ${f(fp[key], 1)} → ${f(q[key], 1)} ms, ${f(fp[key] / q[key])}×`] : [];
  }).join('; ') || 'not profiled in this run';
}

function cpuFeatures(results: QuantizeBenchResults): string {
  const f = results.machine.int8Flags;
  return f ? ` (${f.length ? f.join(', ') : 'no x86 int8 features read'})` : '';
}

function vnniText(results: QuantizeBenchResults): string {
  const f = results.machine.int8Flags;
  if (!f) return 'This CPU has AVX-512 VNNI, so the int8 kernels have their instructions';
  return f.some((x) => x.includes('vnni'))
    ? 'This CPU has VNNI, so the int8 kernels have their instructions'
    : 'This CPU has no VNNI: ORT\'s U8S8 kernels multiply with AVX2\'s VPMADDUBSW (two products to an int16, then widened), slower than VNNI\'s one-step dot product';
}

/** What `bench/ort-int8-speed.py` measured on another machine (bench/results/quantize-other-cpu.json), if it was run. */
interface OtherCpuSpeed {
  machine: { cpu: string; flags: string; cores: number; onnxruntime: string };
  measuredOn?: string;
  rows: Array<{ model: string; threads: number; fp32_ms: number; int8_ms: number; speed: number }>;
}

function otherCpuSpeed(file = 'bench/results/quantize-other-cpu.json'): string | undefined {
  if (!existsSync(file)) return undefined;
  const r = JSON.parse(readFileSync(file, 'utf8')) as OtherCpuSpeed;
  const byModel = new Map<string, string[]>();
  for (const row of r.rows) {
    const list = byModel.get(row.model) ?? [];
    list.push(`${row.fp32_ms.toFixed(1)} → ${row.int8_ms.toFixed(1)} ms at ${row.threads} intra-op thread${row.threads === 1 ? '' : 's'} (${row.speed.toFixed(2)}×)`);
    byModel.set(row.model, list);
  }
  const figures = [...byModel].map(([model, list]) => `${model} ${list.join(', ')}`).join('; ');
  return `- Speed on another x86 CPU, measured once outside \`npm run bench\` (${r.measuredOn ?? 'date not recorded'}, \`bench/ort-int8-speed.py\`: the Python onnxruntime ${r.machine.onnxruntime}, same MLAS kernels, on a borrowed ${r.machine.cores}-core ${r.machine.cpu.trim()} with ${r.machine.flags.trim().split(/\s+/).join(', ')}; the INT8 files were \`fleetctl model quantize --method minmax\` builds; medians of alternating runs on random input): ${figures}. AMX-INT8 does not change the picture: the int8 depthwise Convs hold these models back there too, and with more threads INT8 gains less than FP32 does.`;
}

export function renderQuantizeTable(results: QuantizeBenchResults): string {
  const g = results.goals;
  const lines = [
    '## INT8 quantization (`bench/quantize.ts`)',
    '',
    `Measured ${results.createdAt.slice(0, 10)} on ${results.machine.cpu}${cpuFeatures(results)} (${results.machine.cores} cores shared), Node ${results.machine.node}, onnxruntime-node ${results.machine.onnxruntime}, CPU EP, 1 intra-op thread, median of alternating runs in one process, each fetching only the outputs the model's decoder reads, as the agent's worker does (agent/src/decode/spec.ts decoderFetches).`,
    `Goals: size ≤ ${g.sizeRatioMax}×, CPU speed INT8/FP32 ≥ ${g.speedRatioMin}×, mAP@0.5 drop ≤ ${g.mapDropMax} point. mAP drop = 100 − mAP@0.5 of the candidate against FP32's own detections on held-out frames (no labelled data ships with the sample assets). In brackets, its 95% interval over the evaluated frames (percentile bootstrap, fleet-server/src/quantize/ap.ts bootstrapMeanAp: how far the figure moves on other frames like these; frames of one video are correlated, so it is if anything too narrow). F1 drop at threshold = 100 − F1 of the candidate's boxes matched one-to-one at IoU 0.5 to FP32's, both decoded at the metadata's score threshold (the publish gate's second limit, \`--max-f1-drop\`, default 3 points: fleet-server/src/quantize/gate.ts). "vs minmax" = this build's agreement mAP minus the minmax build's on the same frames, with the paired 95% interval (\`fleetctl model evaluate --compare\`: both scored on each bootstrap draw, so what the two builds share cancels out); an interval that holds 0 means these frames do not tell the two builds apart.`,
    '',
    '| model | variant | size × | FP32 ms | variant ms | speed × | agreement mAP@0.5 | mAP drop | vs minmax | F1 drop at threshold | goals met |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of results.models) {
    for (const r of m.rows) {
      const met = r.variant === 'fp16' ? '—' : [r.sizeRatio <= g.sizeRatioMax ? 'size' : '', r.speedRatio >= g.speedRatioMin ? 'speed' : '', r.mapDrop <= g.mapDropMax ? 'mAP' : ''].filter(Boolean).join(', ') || 'none';
      lines.push(`| ${m.model} | ${r.variant} | ${f(r.sizeRatio, 3)} | ${f(r.fp32Ms, 1)} | ${f(r.candidateMs, 1)} | ${f(r.speedRatio)} | ${f(r.agreementMap, 1)} | ${f(r.mapDrop, 1)}${r.mapDropCi95 ? ` (${f(r.mapDropCi95[0], 1)}–${f(r.mapDropCi95[1], 1)})` : ''} | ${r.vsMinmax ? `${signed(r.vsMinmax.difference)} (${signed(r.vsMinmax.ci95[0])} to ${signed(r.vsMinmax.ci95[1])})` : '—'} | ${r.f1Drop === undefined ? 'not measured' : f(r.f1Drop, 1)} | ${met} |`);
    }
  }
  // What the paired intervals tell apart on these frames (an interval that holds 0 does not).
  const told = results.models.filter((m) => m.rows.some((r) => r.vsMinmax)).map((m) => {
    const int8 = m.rows.filter((r) => r.vsMinmax && r.variant !== 'fp16');
    const part = (want: (r: QuantizeBenchRow) => boolean) => int8.filter(want).map((r) => r.variant).join(', ') || 'none';
    return `${m.model}: better than minmax ${part((r) => r.vsMinmax!.ci95[0] > 0)}; worse ${part((r) => r.vsMinmax!.ci95[1] < 0)}; not told apart ${part((r) => r.vsMinmax!.ci95[0] <= 0 && r.vsMinmax!.ci95[1] >= 0)}`;
  });
  if (told.length) lines.push('', `On these frames the paired intervals tell apart (INT8 builds against minmax): ${told.join('; ')}.`);
  const splits = results.models.filter((m) => m.timeSplit?.length);
  if (splits.length) {
    lines.push('', 'Where one run\'s time goes (ORT\'s per-node profiler, same input, ms per run; the INT8 depthwise count includes the depthwise 1×1 Convs the hard-swish rescaling adds):', '',
      '| model | variant | depthwise Convs | other Convs | other ops | total |', '|---|---|---|---|---|---|');
    for (const m of splits) for (const t of m.timeSplit ?? []) lines.push(`| ${m.model} | ${t.variant} | ${f(t.depthwiseMs, 1)} | ${f(t.convMs, 1)} | ${f(t.otherMs, 1)} | ${f(t.depthwiseMs + t.convMs + t.otherMs, 1)} |`);
  }
  lines.push('', ...results.models.map((m) => `- ${m.model}: calibrated on ${m.calibration.frames} frames of \`${m.calibration.source}\`, evaluated on ${m.evaluation.frames} frames of \`${m.evaluation.source}\`.`));
  lines.push(
    `- INT8 here = QDQ, per-channel symmetric int8 weights (${results.weightRange === 'reduced' ? '`--weight-range reduced`, the CPU default: on x86 without VNNI the U8S8 GEMM adds pairs of products into int16 sums that saturate at full range, so in the Convs ORT runs as integer GEMMs each channel\'s scale holds every such pair of weights to a same-sign sum of 128 steps (qmath.ts weightGridFor; ±63 where a Conv reads an odd channel count), and depthwise Convs keep ±127. Measured once outside this table (2026-11-27, AMD EPYC with AVX2 only): the minmax builds of both models gave bit-identical outputs to the same files with their GEMM weights rewritten as uint8 (ORT\'s U8U8 kernels, which cannot saturate); against the earlier ±63 grid, BlazeFace minmax agreement went 77.1 → 86.6 on its 6 photos (a full-range build run exactly: 84.4) and the CenterNet heatmap SNR 18.3 → 18.5 dB on its 96 frames (full range: 18.8)' : '±127'}), int32 bias (stored float, quantized by onnxruntime at load: see Size),` + ' uint8 asymmetric activations (onnxruntime 1.30 on x86 fuses depthwise Convs into QLinearConv only for U8S8; checked with `optimizedModelFilePath`), post-processing head in float. Before ranges are measured the float model is prepared (fleet-server/src/quantize/prepare.ts): channel equalization of Conv→ReLU→Conv pairs, rescaling across hard-swish (the gate becomes a depthwise 1×1 Conv) and along residual streams, and GPTQ rounding of every Conv\'s weights against its real inputs. FP16 = fp16 weights read through Casts (ORT CPU computes in fp32), so its speed is FP32\'s.',
    '- Where the CenterNet\'s error came from (measured on vtest.avi with full-range weights on an AVX-512 VNNI CPU, before the 7-bit default): per-channel int8 weights rounded to nearest alone took the heatmap to 9–11 dB (BatchNorm-folded filters whose large weights cancel on real inputs; GPTQ: ~25 dB); one squeeze-excite Conv had 71 of 72 int32 biases saturated (now a weight-scale floor); hard-swish blocks with unbalanced channels were the worst activations (9.6 and 11.1 dB alone; after rescaling, none below 27 dB). What is left is ~340 rounded activations each costing a little (heatmap 16–20 dB): the mAP drop comes from the small, rarely found classes: on the 96 held-out frames (the minmax build, then the default of `fleetctl model quantize`) person/car/truck/bird/frisbee agree at AP 99.7–100, fire hydrant 93.4 (46 FP32 boxes), sports ball 89.4 (38), skis 85.2 (13), dog 73.5 (6); the class mean weighs each alike. Evaluated on 24 frames the same change of build moved this table by 3 points either way, hence 96. Entropy (the KL search) was at 34.7 on the CenterNet until two fixes (fleet-server/src/quantize/entropy.ts, ranges.ts): the zero spike of ReLU outputs had pulled the thresholds down (ReLU outputs clipped to ~1/8 of their range), and the squeeze-excite vectors (a few thousand values from 32 frames) are too few for a 2048-bin density (one gate lost 37% of its values to clipping); the first bin now takes its neighbour\'s count, as NVIDIA\'s pytorch-quantization does, and tensors under 16 values a bin keep min/max. What it still clips costs ~2.7 dB at the heatmap against minmax (16.2 against 18.9 dB in the test); where the KL curve is flat the widest threshold within 5% of its minimum wins (KL_TIE_TOLERANCE: the bare argmin had moved one depthwise ReLU from 0.60 to 0.48 of its range when the weight grid changed, 2.3 dB at the heatmap). Where the rounding noise sits now (the sensitivity probe, fleet-server/src/quantize/sensitivity.ts, on 2 frames with entropy ranges, 2026-11-27): the stem Conv and its hard-swish hold ~27% of the summed noise power (the first depthwise filter amplifies it), the next 25 activations ~30%, the other ~330 the rest. Keeping the stem float measured +1.1 dB (entropy) and +0.6 dB (minmax) at the heatmap logits on 24 frames with no clear speed change, so it is not the default; the systematic part of the error (the mean logit error of each class) is 12–15% of its power, so a bias correction could win at most ~0.7 dB. The accuracy gate refuses what drops more than 1 point and offers FP16/FP32.',
    `- int8-minmax-mixed: \`--method minmax --target-snr ${MIXED_TARGET_SNR_DB}\`: a sensitivity search (one run per activation with only it rounded) keeps float the activations needed to hold ${MIXED_TARGET_SNR_DB} dB where the float head begins; the Convs reading them compute in float, their weights stored as the int8 integers GPTQ chose (\`--float-weights int8\`, the default: a Cast and a Mul onnxruntime folds at load, so the file stays near the INT8 size at no cost in speed, and the weights are those the search measured; with \`--float-weights float\` they keep their unrounded values and the CenterNet's file was 0.605× of FP32). More accurate, and slower on CPU (Q/DQ at every int8/float boundary). In earlier full-range runs on a VNNI CPU the CenterNet came at 30 dB to about 1 point from FP32, at the publish gate's edge (\`fleetctl model quantize --target-snr 30\` builds measured 99.35 and 98.9 on these 96 frames); BlazeFace keeps about half its activations float (with float weights its file was 0.80× of FP32, larger than FP16's; with int8 weights about 0.33×). Where the CenterNet's last point comes from (2026-11-28, measured once outside this table on these 96 frames): with every activation kept float and GPTQ's int8 weights read through Cast × scale (a calibration on 8 vtest frames), the build lost 1.46 points; with every weight unrounded as well, 0.01. The weights' rounding alone costs about what the mixed build loses (1.22), which is why keeping more activations float (35 and 40 dB lost 1.07 and 1.20) does not lower it: the next step is float weights where they matter most. The activations' share cannot be measured by giving the int8 Convs float weights: onnxruntime's WeightBiasQuantization pass quantizes the float weights of a Conv between a DequantizeLinear and a QuantizeLinear itself (the optimized model holds a QLinearConv for each; such a build lost 59 points with every activation int8).`,
    '- Size: per-channel int8 weights are 0.25× of their float bytes, so what else a file holds decides the goal. A CPU build (since 2026-11-28) stores each output channel\'s weight scale as binary16 (scales are rounded up to binary16 values before the weights are rounded, so the grid widens by at most 2^-10 and GPTQ rounds onto that very grid) and its bias as float: onnxruntime (its WeightBiasQuantization pass, checked on 1.30) quantizes a Conv\'s float bias to int32 with scale s_in·s_w[c] at load, so no bias scale is stored, and the bias is stored as binary16 where that moves it by at most 1/32 of an output step (70 of the 95 biases of the CenterNet minmax build; the other 25 keep float32, a squeeze-excite Conv among them whose biases would have moved 4 steps). Value names are short and only the weighted nodes keep their names (fleet-server/src/convert/onnx/passes.ts compactNames). Against the earlier files (int32 bias with a float32 scale, float32 weight scales, the model\'s names), the minmax builds went from 0.298× to 0.268× (CenterNet) and from 0.371× to 0.293× (BlazeFace), the CenterNet heatmap SNR on the 96 frames from 18.6 to 18.8 dB; the earlier file rewritten with float biases and short names gave bit-identical outputs, and onnxruntime still fuses every Conv (checked with `optimizedModelFilePath`). `fleetctl model quantize --bias int32` stores the int32 biases and their scales again, for a runtime that fuses only a bias read through a DequantizeLinear (measured once outside this table, 2026-11-28: 0.284× for the CenterNet minmax build, 0.311× for the BlazeFace entropy build). Its integers are those onnxruntime makes at load from a float32 bias (bit-identical outputs in test/unit/quantize-graph.test.ts, and against BlazeFace\'s default build); on the CenterNet, where the default stores 70 of the 95 biases as halves, the two builds differ by 19.8 dB at the heatmap on 24 frames: a bias moved by 1/32 of an output step flips the rounding of a few outputs, and a hundred layers carry those flips about as far as the rounding noise itself. Against FP32 on the 96 frames: heatmap SNR 18.9 dB (int32) and 18.8 (default), F1 drop at threshold 4.1 and 5.0, agreement mAP 88.3 and 92.1 (the rare classes again). BlazeFace stays above 0.27×: its int8 weights alone are 0.22× of its FP32 file, a 0.6 MB model whose graph (node and value names) is 9% of it, so its scales, biases and ~480 nodes take more than the goal leaves. TensorRT builds keep float32 scales (its ONNX parser takes Q/DQ scales as initializers) and every name. Weight zero points are left out (ONNX defaults them to 0).',
    `- Speed: the split above says where the goal is lost. ORT's int8 Convs other than depthwise are faster than FP32's (${splitText(results, 'convMs')}), but its int8 depthwise Convs (QLinearConv on NHWC, U8S8) are slower than FP32's NCHWc depthwise kernels (${splitText(results, 'depthwiseMs')}), and both models are depthwise-separable throughout. Which int8 depthwise kernel runs depends on the channel count (measured once outside this table, 2026-11-27 on an AVX2 EPYC: 3×3 depthwise Convs chained 8 deep, 1 thread): MLAS's symmetric depthwise kernel takes only channel counts that are multiples of 16 (onnxruntime's convsym.cpp, MlasConvSymPackWSize) and ran at 1.5–1.9× FP32's time (64, 80 and 96 channels at 56×56, 32 at 128×128); any other count falls to the generic kernel, at 2.5× (72 channels) to 3.4× (24 channels at 128×128). BlazeFace's sixteen 24-channel depthwise Convs take about 10 of its ~24 profiled ms; padding them to 32 channels would not pay, because the residual stream they read is 24 channels wide and its 1×1 Convs would grow 1.8× (by the same figures, padding CenterNet's two 72-channel ones to 80 would save about 1 ms of ~60). ${vnniText(results)}; the depthwise balance is the runtime's, and on ARM boxes (Jetson, phones) it differs: measure there. Keeping the depthwise Convs float (\`--exclude\` them) does not help either, measured once on BlazeFace outside this table: they run at FP32's speed again, but the DQ/Q and layout changes on both sides of each cost more (12.8–16.2 ms a run against 9.0–9.9 all-int8 and 7.4–8.0 FP32). The Convs that write into the float head (CenterNet's heatmap and size logits) keep a float output by design: on 256 levels neighbouring cells of a peak can tie, and the max-pool peak picking would report the box twice; they read int8 and run as MatMulIntegerToFloat (fleet-server/src/quantize/float-head-matmul.ts: 87.6 → 77.9 ms a CenterNet run on an AVX2 EPYC; as DQ → float Conv they had taken 6.8 of ~37 ms on the VNNI machine). Two fixes measured here: spatial ReduceMeans become GlobalAveragePool (ORT fuses it into QLinearGlobalAveragePool; a float ReduceMean on the NHWC int8 layout took 4.6 of 55 ms), and constants read by quantized Mul/Add take the activations' type (so the hard-swish ×1/6 Muls fuse into QLinearMul); together about 1.0× → 1.2× on the CenterNet. A third: a ReLU after an Add or a Concat folds into that op's Q, as one after a Conv always did (fleet-server/src/quantize/qdq.ts): ORT cannot fuse QLinearAdd/QLinearConcat → DQ → ReLU → Q, so each of BlazeFace's 31 residual Add → ReLU blocks requantized a full feature map (two runs of this benchmark on 2026-11-27, before and after: its other ops in the split went from 3.7 ms against FP32's 1.1 to 1.6 against 1.7, its speed from 0.52× to 0.63×; side by side in one process 0.45–0.51× → 0.52–0.61×), and the CenterNet head's three Concat → ReLU rounded twice, first on the Concat's signed grid, about 5× coarser than the ReLU's (the minmax build on the 96 frames, same day: agreement 83.2 → 86.6, F1 at threshold 94.1 → 95.1, heatmap SNR 18.3 → 18.6 dB). Figures are noisy on the shared 2-core machine: compare the ratios, not the milliseconds. Even the ratios move between runs: four runs on 2026-11-28 gave the CenterNet 1.49–1.54×, 0.96–1.17× (other work on the machine), 1.25–1.26× and 1.09–1.11× (FP32 took 85.8 ms a run there against 75.5 in the run before, load 1.34 at its start), a run later that day 1.16–1.18× (FP32 93.8 ms) and this table's, later still, 1.23–1.27× (FP32 113.7 ms: the host was loaded), FP16 (FP32's kernels) 1.16×, 0.86×, 1.04×, 0.95×, 1.02× and 1.05× beside them; 1.28–1.36× the day before. One run at 1.5× does not show the goal met. The minmax files from before and after that day's size change, run side by side, took the same time (58.4 and 57.3 ms).`,
  );
  const other = otherCpuSpeed();
  if (other) lines.push(other);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { frames: { type: 'string' }, runs: { type: 'string', default: '10' } } });
  const dir = mkdtempSync(join(tmpdir(), 'ef-qbench-'));
  const models: QuantizeBenchModel[] = [];
  try {
    for (const m of MODELS) {
      if (!existsSync(m.path)) { process.stderr.write(`skipping ${m.path}: missing (run npx tsx scripts/prepare-models.ts)\n`); continue; }
      const calib = values.frames ? { ...m.calib, maxFrames: Number(values.frames) } : m.calib;
      models.push(await benchModel(m.path, calib, m.evalSel, Number(values.runs), dir));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ortVersion = (JSON.parse(readFileSync('node_modules/onnxruntime-node/package.json', 'utf8')) as { version: string }).version;
  const results: QuantizeBenchResults = {
    bench: 'quantize', createdAt: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, onnxruntime: ortVersion, int8Flags: int8CpuFlags() },
    weightRange: 'reduced',
    goals: { sizeRatioMax: 0.27, speedRatioMin: 1.5, mapDropMax: 0.5 }, models,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/quantize.json', `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderQuantizeTable(results));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
