/**
 * Mixed-precision search: which activations cost the most accuracy when rounded to int8. A probe
 * model inserts, for every planned activation T, T' = T + g_T·(DQ(Q(T)) − T) with g_T a scalar graph
 * input; one session then measures, run by run, the output SNR with exactly one activation
 * quantized (g_T = 1, all others 0). Per-layer local errors do not predict this: in the CenterNet
 * MobileNetV3 backbone, rounding the first Conv's output alone (40 dB locally) drops the heatmap to
 * 8 dB, because the next 3×3 depthwise filter has gains near 70 and amplifies the rounding noise.
 * Noise powers of independent roundings add, so the activations are kept quantized, least costly
 * first, while the summed noise-to-signal ratio stays under the target; the rest stay float.
 */
import ort from 'onnxruntime-node';
import { encodeModel } from '../convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { cloneModel, planQuantization, topoSort, type QuantPlanOptions } from './qdq.js';
import { activationParams, activationParamsU8 } from './qmath.js';
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

export async function activationSensitivity(opts: SensitivityOptions): Promise<TensorSensitivity[]> {
  const plan = planQuantization(opts.model, opts.plan);
  // The probe is the unfolded source: a folded ReLU is the clamp of its output's Q, which the probe applies to the ReLU output.
  const probe = cloneModel(opts.model);
  const g = probe.graph;
  const extra: OnnxNode[] = [];
  const gates: { tensor: string; gate: string }[] = [];
  const rename = new Map<string, string>();
  plan.activations.forEach((t, k) => {
    const r = opts.ranges.get(t);
    if (!r) return;
    const id = `~s${k.toString(36)}`;
    const u8 = opts.plan.target === 'cpu' && opts.plan.activationType !== 'int8';
    const p = u8 ? activationParamsU8(r) : activationParams(r, opts.plan.target === 'tensorrt');
    g.initializers.set(`${id}/s`, floatTensor([], [p.scale]));
    g.initializers.set(`${id}/z`, { dims: [], dataType: u8 ? DataType.UINT8 : DataType.INT8, data: Uint8Array.of(p.zeroPoint & 0xff) });
    g.inputs.push({ name: `${id}/g`, elemType: DataType.FLOAT, shape: [] });
    extra.push(
      { opType: 'QuantizeLinear', name: `${id}/Q`, inputs: [t, `${id}/s`, `${id}/z`], outputs: [`${id}/q`], attributes: [] },
      { opType: 'DequantizeLinear', name: `${id}/DQ`, inputs: [`${id}/q`, `${id}/s`, `${id}/z`], outputs: [`${id}/dq`], attributes: [] },
      { opType: 'Sub', name: `${id}/d`, inputs: [`${id}/dq`, t], outputs: [`${id}/e`], attributes: [] },
      { opType: 'Mul', name: `${id}/m`, inputs: [`${id}/e`, `${id}/g`], outputs: [`${id}/ge`], attributes: [] },
      { opType: 'Add', name: `${id}/a`, inputs: [t, `${id}/ge`], outputs: [`${id}/out`], attributes: [] },
    );
    rename.set(t, `${id}/out`);
    gates.push({ tensor: t, gate: `${id}/g` });
  });
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => rename.get(i) ?? i);
  g.nodes = topoSort([...g.nodes, ...extra], new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]));
  const def = probe.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (def) def.version = Math.max(def.version, 13);
  // Measure where the float head begins (the last Convs' outputs): decoded outputs such as TopK-sorted
  // detections reorder on the smallest change and would make every SNR look catastrophic.
  const producedInside = new Set(opts.model.graph.nodes.filter((n) => !plan.excluded.has(nodeKey(n))).flatMap((n) => n.outputs));
  const boundary = new Set<string>();
  for (const n of opts.model.graph.nodes) if (plan.excluded.has(nodeKey(n))) for (const i of n.inputs) if (producedInside.has(i)) boundary.add(i);
  const outputs = boundary.size > 0 ? [...boundary] : g.outputs.filter((o) => o.elemType === DataType.FLOAT).map((o) => o.name);
  for (const name of outputs) if (!g.outputs.some((o) => o.name === name)) g.outputs.push({ name, elemType: DataType.FLOAT });
  const session = await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  const zero = new ort.Tensor('float32', Float32Array.of(0), []), one = new ort.Tensor('float32', Float32Array.of(1), []);
  try {
    const feedsFor = (frame: ModelInput, on: string | undefined) => {
      const feeds: Record<string, ort.Tensor> = { [opts.inputName]: new ort.Tensor(frame.dtype, frame.data, frame.dims) };
      for (const gt of gates) feeds[gt.gate] = gt.gate === on ? one : zero;
      return feeds;
    };
    const refs: ort.InferenceSession.OnnxValueMapType[] = [];
    for (const f of opts.frames) refs.push(await session.run(feedsFor(f, undefined), outputs));
    const result: TensorSensitivity[] = [];
    for (const gt of gates) {
      const acc = outputs.map(() => ({ sig: 0, err: 0 }));
      for (const [fi, f] of opts.frames.entries()) {
        const out = await session.run(feedsFor(f, gt.gate), outputs);
        outputs.forEach((name, oi) => {
          const a = refs[fi][name].data as Float32Array, b = out[name].data as Float32Array;
          addToSnr(acc[oi], a, b);
        });
      }
      const snr = Math.min(...acc.map(snrDb));
      result.push({ tensor: gt.tensor, snrDb: snr });
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
