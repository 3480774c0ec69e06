/**
 * Full-integer INT8 TFLite from calibration ranges, following TFLite's 8-bit quantization spec
 * (tensorflow.org/lite/performance/quantization_spec): activations int8 asymmetric per tensor
 * (real = scale * (q - zero_point), the range widened to hold 0 exactly); conv weights int8
 * symmetric per output channel (zero_point 0; quantized_dimension 0 for CONV_2D, 3 for
 * DEPTHWISE_CONV_2D); biases int32 with scale = input scale * weight scale. Ops whose spec says
 * "input and output must have the same scale/zero_point" (MAX_POOL_2D, RESHAPE, TRANSPOSE, PAD,
 * RESIZE_*, MAXIMUM/MINIMUM, CONCATENATION) inherit their input's parameters; a CONCATENATION input
 * with other parameters is requantized by an int8→int8 QUANTIZE first. LOGISTIC's output is fixed at
 * scale 1/256, zero_point -128. The model keeps float32 inputs and outputs (QUANTIZE in, DEQUANTIZE
 * out), so the agent feeds it exactly like the FP32 file.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { Op, TensorType, opName } from './schema.js';
import type { TflModel, TflOperator, TflTensor } from './model.js';

export interface Range { min: number; max: number }
interface QP { scale: number; zp: number }

const SAME_PARAMS = new Set<number>([Op.MAX_POOL_2D, Op.RESHAPE, Op.TRANSPOSE, Op.PAD, Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR, Op.MAXIMUM, Op.MINIMUM]);
const OWN_PARAMS = new Set<number>([Op.HARD_SWISH, Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.ADD, Op.SUB, Op.MUL, Op.RELU, Op.RELU6, Op.RELU_N1_TO_1, Op.MEAN]);

export function asymmetric(r: Range): QP {
  const lo = Math.min(r.min, 0), hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1e-6;
  const zp = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  return { scale, zp };
}

function floats(t: TflTensor): Float32Array {
  return new Float32Array(t.data!.slice().buffer);
}

function quantizeInt8(values: Float32Array, qp: QP): Uint8Array {
  const out = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.max(-128, Math.min(127, Math.round(values[i] / qp.scale) + qp.zp));
  return new Uint8Array(out.buffer);
}

export interface Int8Report { quantizedOps: number; requantized: number; floatIslands: number }

/** Worst-channel error gain of a conv: input step × Σ|w| over a filter, in output steps. */
function amplification(code: number, inScale: number, w: Float32Array, shape: number[], outScale: number): number {
  const axis = code === Op.CONV_2D ? 0 : 3;
  const channels = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const sums = new Float64Array(channels);
  w.forEach((v, k) => { sums[Math.floor(k / inner) % channels] += Math.abs(v); });
  return (inScale * Math.max(...sums)) / outScale;
}

export interface Int8Options {
  /** Convs whose worst channel turns one input step into more output steps than this stay float (default 32). */
  maxAmplification?: number;
  /** Keep the ops that produce the outputs in float (default true); false quantizes them too (diagnostics). */
  floatHead?: boolean;
  /**
   * Mixed precision: activations (tensor names) kept float, as the sensitivity search chose them
   * (fleet-server/src/quantize/sensitivity.ts); every op reading one runs float too, as in the QDQ build.
   */
  keepFloat?: ReadonlySet<string>;
  /**
   * Constant tensors (by index) of the same graph before GPTQ rounding: the weights an op that runs
   * float takes, rather than the int8-grid ones prepared for the quantized ops.
   */
  unroundedConstants?: ReadonlyMap<number, Uint8Array>;
}

export function quantizeTfliteInt8(model: TflModel, ranges: ReadonlyMap<string, Range>, opts: Int8Options = {}): Int8Report {
  const maxAmplification = opts.maxAmplification ?? 32;
  let floatIslands = 0;
  const qp = new Map<number, QP>();
  const ops: TflOperator[] = [];
  let requantized = 0;
  const T = model.tensors;
  const add = (t: TflTensor): number => { T.push(t); return T.length - 1; };
  const setQ = (i: number, p: QP): void => { qp.set(i, p); T[i].type = TensorType.INT8; T[i].quant = { scale: [p.scale], zeroPoint: [p.zp] }; };
  const producer = new Map<number, TflOperator>();
  for (const op of model.operators) for (const o of op.outputs) producer.set(o, op);
  const rangeOf = (i: number): QP => {
    const r = ranges.get(T[i].name);
    // The output of an op that moves values (MAX_POOL_2D, RESHAPE, ...) is not calibrated on its own:
    // it has its input's range. Needed when that op runs float (mixed precision) and an int8 op reads it.
    const p = producer.get(i);
    if (!r && p && SAME_PARAMS.has(p.code)) return rangeOf(p.inputs[0]);
    if (!r) throw new ModelError(`INT8 export: no calibration range for tensor ${T[i].name}; calibrate the ONNX model with this tensor included`);
    return asymmetric(r);
  };
  const constQ = (i: number, p: QP | undefined, tag: string): number => {
    const v = floats(T[i]);
    let lo = 0, hi = 0;
    for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    const q = p ?? asymmetric({ min: lo, max: hi });
    return add({ name: `${T[i].name}/${tag}/int8`, shape: [...T[i].shape], type: TensorType.INT8, data: quantizeInt8(v, q), quant: { scale: [q.scale], zeroPoint: [q.zp] } });
  };

  // Float inputs → int8 through QUANTIZE.
  const rename = new Map<number, number>();
  for (const i of model.inputs) {
    const q = rangeOf(i);
    const qi = add({ name: `${T[i].name}/int8`, shape: [...T[i].shape], type: TensorType.INT8, quant: { scale: [q.scale], zeroPoint: [q.zp] } });
    qp.set(qi, q);
    rename.set(i, qi);
    ops.push({ code: Op.QUANTIZE, inputs: [i], outputs: [qi] });
  }

  const head = opts.floatHead === false ? new Set<number>() : floatHead(model);
  const dequantized = new Map<number, number>();
  // Float islands: a conv that would turn one input step into more than `maxAmplification` output
  // steps of error (MobileNetV3 depthwise filters after BN folding reach |w| ≈ 65 on channels whose
  // inputs are tiny) runs in float, and so does the producer of its input: the loss is in quantizing
  // that input per tensor, not in the conv's own arithmetic.
  const islands = new Set<number>();
  const floatTensors = new Set<number>();
  model.operators.forEach((op, k) => {
    if (head.has(k) || (op.code !== Op.CONV_2D && op.code !== Op.DEPTHWISE_CONV_2D)) return;
    const rin = ranges.get(T[op.inputs[0]].name), rout = ranges.get(T[op.outputs[0]].name);
    if (!rin || !rout || model.inputs.includes(op.inputs[0])) return;
    const gain = amplification(op.code, asymmetric(rin).scale, floats(T[op.inputs[1]]), T[op.inputs[1]].shape, asymmetric(rout).scale);
    if (gain > maxAmplification) { islands.add(k); floatTensors.add(op.inputs[0]); }
  });
  if (opts.keepFloat?.size) {
    model.operators.forEach((op, k) => {
      const kept = op.inputs.filter((i) => i >= 0 && !T[i].data && opts.keepFloat!.has(T[i].name));
      if (kept.length === 0 || head.has(k)) return;
      islands.add(k);
      for (const i of kept) floatTensors.add(i);
    });
  }
  const requantizedFloat = new Map<number, number>();
  const toInt8 = (i: number): number => {
    let q = requantizedFloat.get(i);
    if (q === undefined) {
      const p = rangeOf(i);
      q = add({ name: `${T[i].name}/int8`, shape: [...T[i].shape], type: TensorType.INT8, quant: { scale: [p.scale], zeroPoint: [p.zp] } });
      qp.set(q, p);
      ops.push({ code: Op.QUANTIZE, inputs: [i], outputs: [q] });
      requantizedFloat.set(i, q);
    }
    return q;
  };
  for (const [k, op] of model.operators.entries()) {
    const out = op.outputs[0];
    const isFloatOp = head.has(k) || islands.has(k) || op.outputs.some((o) => floatTensors.has(o));
    if (isFloatOp && opts.unroundedConstants) for (const i of op.inputs) { const d = i >= 0 && T[i].data ? opts.unroundedConstants.get(i) : undefined; if (d) T[i].data = d; }
    const ins = op.inputs.map((i) => rename.get(i) ?? i).map((i) => (!isFloatOp && T[i].type === TensorType.FLOAT32 && !T[i].data ? toInt8(i) : i));
    const toFloat = (i: number): number => {
      if (T[i].type !== TensorType.INT8 || T[i].data) return i;
      let f = dequantized.get(i);
      if (f === undefined) {
        f = add({ name: `${T[i].name}/float`, shape: [...T[i].shape], type: TensorType.FLOAT32 });
        ops.push({ code: Op.DEQUANTIZE, inputs: [i], outputs: [f] });
        dequantized.set(i, f);
      }
      return f;
    };
    if (isFloatOp) {
      // Float head or island: int8 activations come back to float once, the op runs with its float
      // weights, and an int8 consumer of its output quantizes it again (toInt8).
      ops.push({ ...op, inputs: op.inputs.map((orig, j) => (rename.has(orig) ? orig : toFloat(ins[j]))) });
      if (islands.has(k)) floatIslands++;
      continue;
    }
    const isAct = (i: number): boolean => !T[i].data;
    const x = ins[0];
    if (op.code === Op.CONV_2D || op.code === Op.DEPTHWISE_CONV_2D) {
      const sIn = qp.get(x)!.scale;
      const axis = op.code === Op.CONV_2D ? 0 : 3;
      const w = floats(T[ins[1]]);
      const shape = T[ins[1]].shape;
      const channels = shape[axis];
      const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const scales = new Array<number>(channels).fill(0);
      w.forEach((v, k) => { const c = Math.floor(k / inner) % channels; scales[c] = Math.max(scales[c], Math.abs(v)); });
      const b = floats(T[ins[2]]);
      // The int32 bias is b / (input scale * weight scale): a channel whose weights are all (or nearly)
      // zero but whose bias is not would overflow int32, so its weight scale is raised until the bias fits.
      for (let c = 0; c < channels; c++) scales[c] = Math.max(scales[c] / 127, Math.abs(b[c]) / (sIn * 2 ** 30), 1e-12);
      const wq = new Int8Array(w.length);
      w.forEach((v, k) => { const c = Math.floor(k / inner) % channels; wq[k] = Math.max(-127, Math.min(127, Math.round(v / scales[c]))); });
      const bq = Int32Array.from(b, (v, c) => Math.round(v / (sIn * scales[c])));
      const wi = add({ name: `${T[ins[1]].name}/int8`, shape: [...shape], type: TensorType.INT8, data: new Uint8Array(wq.buffer), quant: { scale: scales, zeroPoint: scales.map(() => 0), dim: axis } });
      const bi = add({ name: `${T[ins[2]].name}/int32`, shape: [...T[ins[2]].shape], type: TensorType.INT32, data: new Uint8Array(bq.buffer), quant: { scale: scales.map((s) => s * sIn), zeroPoint: scales.map(() => 0) } });
      setQ(out, rangeOf(out));
      ops.push({ ...op, inputs: [x, wi, bi] });
    } else if (op.code === Op.LOGISTIC) {
      setQ(out, { scale: 1 / 256, zp: -128 });
      ops.push({ ...op, inputs: ins });
    } else if (op.code === Op.CONCATENATION) {
      const target = ranges.has(T[out].name) ? rangeOf(out) : qp.get(ins.find(isAct)!)!;
      setQ(out, target);
      const fixed = ins.map((i) => {
        if (!isAct(i)) return constQ(i, target, 'concat');
        const p = qp.get(i)!;
        if (p.scale === target.scale && p.zp === target.zp) return i;
        const r = add({ name: `${T[i].name}/requant`, shape: [...T[i].shape], type: TensorType.INT8, quant: { scale: [target.scale], zeroPoint: [target.zp] } });
        qp.set(r, target);
        ops.push({ code: Op.QUANTIZE, inputs: [i], outputs: [r] });
        requantized++;
        return r;
      });
      ops.push({ ...op, inputs: fixed });
    } else if (SAME_PARAMS.has(op.code)) {
      const p = qp.get(x);
      if (!p) throw new ModelError(`INT8 export: ${T[x].name} has no quantization parameters before ${opName(op.code)}${op.onnxNode ? ` (ONNX node ${op.onnxNode})` : ''}`);
      setQ(out, p);
      const fixed = ins.map((i, k) => (k > 0 && T[i].type === TensorType.FLOAT32 && T[i].data ? constQ(i, p, 'bound') : i));
      ops.push({ ...op, inputs: fixed });
    } else if (OWN_PARAMS.has(op.code)) {
      const fixed = ins.map((i) => (T[i].type === TensorType.FLOAT32 && T[i].data ? constQ(i, undefined, 'operand') : i));
      setQ(out, rangeOf(out));
      ops.push({ ...op, inputs: fixed });
    } else {
      throw new ModelError(`INT8 export: ${opName(op.code)}${op.onnxNode ? ` (ONNX node ${op.onnxNode})` : ''} has no int8 mapping here; export FP16 or FP32 instead`);
    }
  }

  // int8 outputs → float through DEQUANTIZE, keeping the output names.
  model.outputs = model.outputs.map((o) => {
    if (T[o].type !== TensorType.INT8) return o;
    const f = add({ name: T[o].name, shape: [...T[o].shape], type: TensorType.FLOAT32 });
    T[o].name = `${T[o].name}/int8`;
    ops.push({ code: Op.DEQUANTIZE, inputs: [o], outputs: [f] });
    return f;
  });
  model.operators = ops;
  return { quantizedOps: ops.length, requantized, floatIslands };
}

/**
 * The ops kept in float: those that produce a graph output (through RESHAPE/TRANSPOSE only) and the
 * single-consumer conv or elementwise op feeding each of them. Detector heads emit raw logits over a
 * very wide range (BlazeFace's score logits span about -8000..3), where 256 levels leave no
 * resolution near the decision threshold; the heads are a small share of the compute.
 */
function floatHead(model: TflModel): Set<number> {
  const producer = new Map<number, number>();
  const uses = new Map<number, number>();
  model.operators.forEach((op, k) => { op.outputs.forEach((o) => producer.set(o, k)); op.inputs.forEach((i) => uses.set(i, (uses.get(i) ?? 0) + 1)); });
  const head = new Set<number>();
  const PASS = new Set<number>([Op.RESHAPE, Op.TRANSPOSE]);
  const HEADISH = new Set<number>([Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.ADD, Op.MUL, Op.SUB, Op.LOGISTIC]);
  for (const o of model.outputs) {
    let k = producer.get(o);
    while (k !== undefined && PASS.has(model.operators[k].code)) { head.add(k); k = producer.get(model.operators[k].inputs[0]); }
    for (let depth = 0; k !== undefined && depth < 2 && HEADISH.has(model.operators[k].code); depth++) {
      head.add(k);
      const act = model.operators[k].inputs.find((i) => !model.tensors[i].data);
      if (act === undefined || (uses.get(act) ?? 0) !== 1) break;
      k = producer.get(act);
    }
  }
  return head;
}

/** TFLite activation tensors (by name) that need a calibration range: what `quantizeTfliteInt8` reads. */
export function tensorsNeedingRanges(model: TflModel): string[] {
  const names = new Set<string>();
  for (const i of model.inputs) names.add(model.tensors[i].name);
  for (const op of model.operators) {
    if (OWN_PARAMS.has(op.code) || op.code === Op.CONCATENATION) names.add(model.tensors[op.outputs[0]].name);
  }
  return [...names];
}
