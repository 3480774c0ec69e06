/**
 * Range collection: the model is re-encoded with every tensor to calibrate added as an extra graph
 * output (through our ONNX codec), run in onnxruntime-node on preprocessed frames, and each output
 * is folded into its StreamingHistogram before the next frame runs. Memory is bounded by one
 * frame's activations plus the histograms; no tensor outlives its frame. One pass serves every
 * method (minmax, entropy, percentile are all read from the same histograms).
 */
import ort from 'onnxruntime-node';
import { encodeModel } from '../convert/onnx/codec.js';
import { DataType, type OnnxModel } from '../convert/onnx/model.js';
import { StreamingHistogram } from './histogram.js';
import type { ModelInput } from '../../../agent/src/preprocess/preprocess.js';
import { ModelError } from '../../../agent/src/util/errors.js';

export interface CalibrationResult {
  histograms: Map<string, StreamingHistogram>;
  /** Per-channel |x| maxima (axis 1 of an NCHW tensor, or the axis given in `channelAxis`) for the tensors asked in `channelMaxFor`. */
  channelMax: Map<string, Float64Array>;
  frames: number;
}

export interface CalibrateOptions {
  model: OnnxModel;
  inputName: string;
  tensors: string[];
  frames: AsyncIterable<ModelInput>;
  bins?: number;
  intraOpThreads?: number;
  /** Tensors (subset of `tensors`) whose per-channel maxima are wanted too; their histograms are skipped when `histograms` is false. */
  channelMaxFor?: string[];
  /** Channel axis per tensor where it is not 1 (an NHWC tensor: 3). */
  channelAxis?: ReadonlyMap<string, number>;
  histograms?: boolean;
}

function channelAbsMax(data: Float32Array, dims: readonly number[], into: Float64Array | undefined, axis = 1): Float64Array {
  const c = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = into ?? new Float64Array(c);
  const n = data.length / (c * inner);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      let m = out[ch];
      const base = (b * c + ch) * inner;
      for (let k = 0; k < inner; k++) { const v = Math.abs(data[base + k]); if (v > m) m = v; }
      out[ch] = m;
    }
  }
  return out;
}

export function withExtraOutputs(model: OnnxModel, tensors: string[]): OnnxModel {
  const existing = new Set(model.graph.outputs.map((o) => o.name));
  const extra = tensors.filter((t) => !existing.has(t)).map((name) => ({ name, elemType: DataType.FLOAT }));
  return { ...model, graph: { ...model.graph, outputs: [...model.graph.outputs, ...extra] } };
}

export async function calibrate(opts: CalibrateOptions): Promise<CalibrationResult> {
  const augmented = encodeModel(withExtraOutputs(opts.model, opts.tensors));
  let session: ort.InferenceSession;
  try {
    // logSeverityLevel 3 (errors), as the agent's sessions: onnxruntime's warnings about the graph
    // (an initializer its constant folding left unused, printed on every `model quantize`) are not the
    // operator's to act on. The other quantize sessions (gptq, sensitivity, gate-model) do the same.
    session = await ort.InferenceSession.create(augmented, { intraOpNumThreads: opts.intraOpThreads ?? 1, graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelError(`onnxruntime could not load the model with calibration outputs added: ${(err as Error).message}`, { cause: err });
  }
  const histograms = new Map<string, StreamingHistogram>();
  if (opts.histograms !== false) for (const t of opts.tensors) histograms.set(t, new StreamingHistogram(opts.bins ?? 4096));
  const channelMax = new Map<string, Float64Array>();
  const wantChannels = new Set(opts.channelMaxFor ?? []);
  let frames = 0;
  try {
    for await (const input of opts.frames) {
      const feeds = { [opts.inputName]: new ort.Tensor(input.dtype, input.data, input.dims) };
      const out = await session.run(feeds, opts.tensors);
      for (const t of opts.tensors) {
        const v = out[t];
        if (v.type !== 'float32') throw new ModelError(`Expected calibration tensor ${t} to be float32 but it is ${v.type}`);
        histograms.get(t)?.add(v.data as Float32Array);
        if (wantChannels.has(t)) channelMax.set(t, channelAbsMax(v.data as Float32Array, v.dims, channelMax.get(t), opts.channelAxis?.get(t)));
        v.dispose();
      }
      frames++;
    }
  } finally {
    await session.release();
  }
  if (frames === 0) throw new ModelError('Calibration saw no frames; pass a directory with images or a video file with --calib');
  return { histograms, channelMax, frames };
}
