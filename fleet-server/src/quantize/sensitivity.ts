/**
 * Mixed-precision search: which activations cost the most accuracy when rounded to int8. A probe
 * model gates planned activations T with a boolean graph input each (T's readers get DQ(Q(T)) when
 * it is on, T when off); a session then measures, run by run, the output SNR with exactly one
 * activation quantized (measureProbe; GATES_PER_PROBE activations a probe). Per-layer local errors do not predict this: in the CenterNet
 * MobileNetV3 backbone, rounding the first Conv's output alone (40 dB locally) drops the heatmap to
 * 8 dB, because the next 3×3 depthwise filter has gains near 70 and amplifies the rounding noise.
 * Noise powers of independent roundings add, so the activations are kept quantized, least costly
 * first, while the summed noise-to-signal ratio stays under the target; the rest stay float.
 */
import ort from 'onnxruntime-node';
import { encodeModel } from '../convert/onnx/codec.js';
import { DataType, emptyGraph, floatTensor, type OnnxGraph, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { cloneModel, planQuantization, topoSort, type QuantPlanOptions } from './qdq.js';
import { activationParams, activationParamsU8, type QParams } from './qmath.js';
import { nodeKey } from './graph-info.js';
import type { TensorRange } from './ranges.js';
import { addToSnr, snrDb } from './snr.js';
import type { ModelInput } from '../../../agent/src/preprocess/preprocess.js';
import type { PreprocessSpec } from '../../../agent/src/model/metadata.js';
import { modelInputs, type FrameSelection } from './frames.js';

export interface TensorSensitivity {
  tensor: string;
  /** SNR (dB, worst tensor) where the float head begins, with only this activation quantized. */
  snrDb: number;
}

export interface SensitivityOptions {
  model: OnnxModel;
  inputName: string;
  ranges: Map<string, TensorRange>;
  plan: QuantPlanOptions;
  /** A few preprocessed frames, held in memory for the N runs. */
  frames: ModelInput[];
}

/**
 * Activations gated in one probe model. Each If costs every run some time even when off (CenterNet,
 * 349 of them: 225 ms a run against ~100 ms for the float model, onnxruntime 1.30 on an AVX2 EPYC),
 * and each probe is one more session to create (~1 s for the CenterNet). N activations in probes of
 * G cost N/G creations C and N·F·G If costs c (F frames a gated activation); G = √(C / (F·c)) balances
 * them: 37 for the CenterNet on the search's 2 frames.
 */
const GATES_PER_PROBE = 32;

export async function activationSensitivity(opts: SensitivityOptions): Promise<TensorSensitivity[]> {
  const plan = planQuantization(opts.model, opts.plan);
  const u8 = opts.plan.target === 'cpu' && opts.plan.activationType !== 'int8';
  const gated = plan.activations.flatMap((t) => {
    const r = opts.ranges.get(t);
    return r ? [{ tensor: t, params: u8 ? activationParamsU8(r) : activationParams(r, opts.plan.target === 'tensorrt') }] : [];
  });
  // Measure where the float head begins (the last Convs' outputs): decoded outputs such as TopK-sorted
  // detections reorder on the smallest change and would make every SNR look catastrophic.
  const producedInside = new Set(opts.model.graph.nodes.filter((n) => !plan.excluded.has(nodeKey(n))).flatMap((n) => n.outputs));
  const boundary = new Set<string>();
  for (const n of opts.model.graph.nodes) if (plan.excluded.has(nodeKey(n))) for (const i of n.inputs) if (producedInside.has(i)) boundary.add(i);
  const outputs = boundary.size > 0 ? [...boundary] : opts.model.graph.outputs.filter((o) => o.elemType === DataType.FLOAT).map((o) => o.name);
  const result: TensorSensitivity[] = [];
  for (let from = 0; from < gated.length; from += GATES_PER_PROBE) {
    result.push(...await measureProbe(opts, gated.slice(from, from + GATES_PER_PROBE), u8, outputs));
  }
  return result;
}

/**
 * One probe: the source with, for each activation T of `gated`, an If on a boolean graph input that
 * gives T's readers DQ(Q(T)) when on and T when off (an If runs only the branch it takes, so a run
 * computes one Q/DQ pair; with T + g·(DQ(Q(T)) − T) on every activation each run computed all of
 * them). On the CenterNet's 2 frames the search took 259 s that way, 193 s with If gates all in one
 * probe at optimization level basic, 157 s at level all, and 90 s at level all in probes of 32. Run
 * once with every gate off (the reference, from the same session, so both runs share onnxruntime's
 * rewrite), then once per activation with only its gate on.
 */
async function measureProbe(opts: SensitivityOptions, gated: { tensor: string; params: QParams }[], u8: boolean, outputs: string[]): Promise<TensorSensitivity[]> {
  // The probe is the unfolded source: a folded ReLU is the clamp of its output's Q, which the probe applies to the ReLU output.
  const probe = cloneModel(opts.model);
  const g = probe.graph;
  const gateOf = new Map<string, OnnxNode>();
  const rename = new Map<string, string>();
  gated.forEach(({ tensor: t, params: p }, k) => {
    const id = `~s${k.toString(36)}`;
    g.initializers.set(`${id}/s`, floatTensor([], [p.scale]));
    g.initializers.set(`${id}/z`, { dims: [], dataType: u8 ? DataType.UINT8 : DataType.INT8, data: Uint8Array.of(p.zeroPoint & 0xff) });
    g.inputs.push({ name: `${id}/g`, elemType: DataType.BOOL, shape: [] });
    const then: OnnxGraph = { ...emptyGraph(`${id}/then`), outputs: [{ name: `${id}/dq`, elemType: DataType.FLOAT }], nodes: [
      { opType: 'QuantizeLinear', name: `${id}/Q`, inputs: [t, `${id}/s`, `${id}/z`], outputs: [`${id}/q`], attributes: [] },
      { opType: 'DequantizeLinear', name: `${id}/DQ`, inputs: [`${id}/q`, `${id}/s`, `${id}/z`], outputs: [`${id}/dq`], attributes: [] },
    ] };
    const otherwise: OnnxGraph = { ...emptyGraph(`${id}/else`), outputs: [{ name: `${id}/f`, elemType: DataType.FLOAT }], nodes: [
      { opType: 'Identity', name: `${id}/I`, inputs: [t], outputs: [`${id}/f`], attributes: [] },
    ] };
    gateOf.set(t, { opType: 'If', name: `${id}/if`, inputs: [`${id}/g`], outputs: [`${id}/out`], attributes: [{ name: 'then_branch', type: 'graph', value: then }, { name: 'else_branch', type: 'graph', value: otherwise }] });
    rename.set(t, `${id}/out`);
  });
  // Each If right after what produces its tensor: it reads that tensor from inside its branches, which
  // a sort by node inputs does not see.
  const sorted = topoSort(g.nodes, new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]));
  for (const n of sorted) n.inputs = n.inputs.map((i) => rename.get(i) ?? i);
  g.nodes = [...g.inputs.flatMap((i) => gateOf.get(i.name) ?? []), ...sorted.flatMap((n) => [n, ...n.outputs.flatMap((o) => gateOf.get(o) ?? [])])];
  const def = probe.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (def) def.version = Math.max(def.version, 13);
  for (const name of outputs) if (!g.outputs.some((o) => o.name === name)) g.outputs.push({ name, elemType: DataType.FLOAT });
  const session = await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
  const zero = new ort.Tensor('bool', Uint8Array.of(0), []), one = new ort.Tensor('bool', Uint8Array.of(1), []);
  try {
    const feedsFor = (frame: ModelInput, on: number) => {
      const feeds: Record<string, ort.Tensor> = { [opts.inputName]: new ort.Tensor(frame.dtype, frame.data, frame.dims) };
      gated.forEach((_, k) => { feeds[`~s${k.toString(36)}/g`] = k === on ? one : zero; });
      return feeds;
    };
    const refs: ort.InferenceSession.OnnxValueMapType[] = [];
    for (const f of opts.frames) refs.push(await session.run(feedsFor(f, -1), outputs));
    const result: TensorSensitivity[] = [];
    for (const [k, { tensor }] of gated.entries()) {
      const acc = outputs.map(() => ({ sig: 0, err: 0 }));
      for (const [fi, f] of opts.frames.entries()) {
        const out = await session.run(feedsFor(f, k), outputs);
        outputs.forEach((name, oi) => addToSnr(acc[oi], refs[fi][name].data as Float32Array, out[name].data as Float32Array));
      }
      result.push({ tensor, snrDb: Math.min(...acc.map(snrDb)) });
    }
    return result;
  } finally {
    await session.release();
  }
}

/** Activations to keep float so that the summed noise-to-signal ratio of the quantized ones stays under 10^(−target/10). */
export function selectFloatActivations(sens: TensorSensitivity[], targetSnrDb: number): string[] {
  const budget = 10 ** (-targetSnrDb / 10);
  const sorted = [...sens].sort((a, b) => b.snrDb - a.snrDb);
  let used = 0;
  const keepFloat: string[] = [];
  for (const s of sorted) {
    const nsr = 10 ** (-s.snrDb / 10);
    if (used + nsr <= budget) used += nsr; else keepFloat.push(s.tensor);
  }
  return keepFloat;
}

/**
 * Mixed precision in one call: the sensitivity search on the first two frames of the calibration
 * selection, then the activations to keep float for `targetSnrDb` (what `--target-snr` does in
 * `model quantize`, `model export` and the benchmark).
 */
export async function chooseFloatActivations(o: Omit<SensitivityOptions, 'frames'> & { frames: FrameSelection; preprocess: PreprocessSpec; targetSnrDb: number }): Promise<string[]> {
  const probe: ModelInput[] = [];
  for await (const f of modelInputs({ ...o.frames, maxFrames: Math.min(2, o.frames.maxFrames) }, o.preprocess)) probe.push(f);
  return selectFloatActivations(await activationSensitivity({ ...o, frames: probe }), o.targetSnrDb);
}
