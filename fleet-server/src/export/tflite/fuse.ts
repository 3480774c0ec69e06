/**
 * Folds a RELU / RELU6 / RELU_N1_TO_1 that is the only consumer of a CONV_2D, DEPTHWISE_CONV_2D,
 * ADD, SUB or MUL output into that op's fused_activation_function (schema.fbs ActivationFunctionType
 * NONE 0, RELU 1, RELU_N1_TO_1 2, RELU6 3). Beyond saving an op, this matters for INT8: the producer's
 * output is then quantized over the activation's range only (TFLite's converter does the same).
 */
import { F, Op, Options } from './schema.js';
import type { TflModel } from './model.js';

const ACTIVATION: Record<number, number> = { [Op.RELU]: 1, [Op.RELU_N1_TO_1]: 2, [Op.RELU6]: 3 };
const FIELD: Record<number, { options: number; id: number }> = {
  [Op.CONV_2D]: { options: Options.Conv2DOptions, id: F.Conv2DOptions.fused_activation_function },
  [Op.DEPTHWISE_CONV_2D]: { options: Options.DepthwiseConv2DOptions, id: F.DepthwiseConv2DOptions.fused_activation_function },
  [Op.ADD]: { options: Options.AddOptions, id: 0 },
  [Op.SUB]: { options: Options.SubOptions, id: 0 },
  [Op.MUL]: { options: Options.MulOptions, id: 0 },
};

/**
 * The ONNX ops whose following ReLU this export fuses (FIELD, as the ONNX graph names them; a Clip(0, 6)
 * becomes a fused RELU6 the same way): what the INT8 sensitivity search may fold (QuantPlanOptions.foldInto).
 */
export const TFLITE_ACTIVATION_FUSES: readonly string[] = ['Conv', 'Add'];

export function fuseActivations(model: TflModel): number {
  const consumers = new Map<number, number[]>();
  model.operators.forEach((op, k) => op.inputs.forEach((i) => consumers.set(i, [...(consumers.get(i) ?? []), k])));
  const removed = new Set<number>();
  model.operators.forEach((op) => {
    const field = FIELD[op.code];
    if (!field || op.options?.fields.some((f) => f.id === field.id)) return;
    const out = op.outputs[0];
    const users = consumers.get(out) ?? [];
    if (users.length !== 1 || model.outputs.includes(out)) return;
    const act = model.operators[users[0]];
    const fn = ACTIVATION[act.code];
    if (fn === undefined) return;
    op.options = { type: field.options, fields: [...(op.options?.fields ?? []), { id: field.id, kind: 'i8', value: fn }] };
    op.outputs = [act.outputs[0]];
    removed.add(users[0]);
  });
  model.operators = model.operators.filter((_, k) => !removed.has(k));
  return removed.size;
}

/** Drops tensors that no op, input or output refers to (e.g. float weights replaced by int8 copies) and renumbers. */
export function dropUnusedTensors(model: TflModel): void {
  const used = new Set<number>([...model.inputs, ...model.outputs]);
  for (const op of model.operators) for (const i of [...op.inputs, ...op.outputs]) if (i >= 0) used.add(i);
  const map = new Map<number, number>();
  const tensors = model.tensors.filter((_, i) => used.has(i));
  model.tensors.forEach((_, i) => { if (used.has(i)) map.set(i, map.size); });
  model.tensors = tensors;
  const re = (i: number): number => (i < 0 ? i : map.get(i)!);
  model.inputs = model.inputs.map(re);
  model.outputs = model.outputs.map(re);
  for (const op of model.operators) { op.inputs = op.inputs.map(re); op.outputs = op.outputs.map(re); }
}

/**
 * MobileNetV3's hard-swish arrives from TF as four ops, x * relu6(x + 3) * (1/6):
 * ADD(x, 3) → RELU6 → MUL(x, 1/6) → MUL. It becomes one HARD_SWISH op (BuiltinOperator 117): fewer
 * ops, and for INT8 no intermediate tensors to quantize (the int8 kernel evaluates it exactly).
 * Used for INT8 only: a float16-rounded 1/6 in the source differs from HARD_SWISH's exact 1/6 by
 * 4e-4 relative, which FP32 exports must not add.
 */
export function fuseHardSwish(model: TflModel): number {
  const T = model.tensors;
  const producer = new Map<number, number>();
  const uses = new Map<number, number>();
  model.operators.forEach((op, k) => { op.outputs.forEach((o) => producer.set(o, k)); op.inputs.forEach((i) => uses.set(i, (uses.get(i) ?? 0) + 1)); });
  const scalar = (i: number): number | undefined => (T[i].data && T[i].data!.length === 4 ? new Float32Array(T[i].data!.slice().buffer)[0] : undefined);
  // TF.js weights are often stored as float16, so 1/6 arrives as 0.16663 (relative tolerance 1e-3).
  const near = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) <= 1e-3 * Math.abs(b);
  const single = (t: number): boolean => uses.get(t) === 1 && !model.outputs.includes(t);
  const removed = new Set<number>();
  model.operators.forEach((op, k) => {
    if (op.code !== Op.MUL || op.options?.fields.length) return;
    const [a, b] = op.inputs.map((i) => producer.get(i));
    if (a === undefined || b === undefined) return;
    for (const [mk, rk] of [[a, b], [b, a]]) {
      const mul6 = model.operators[mk], relu6 = model.operators[rk];
      if (mul6.code !== Op.MUL || relu6.code !== Op.RELU6 || !single(mul6.outputs[0]) || !single(relu6.outputs[0])) continue;
      const x = mul6.inputs.find((i) => !T[i].data);
      const c = mul6.inputs.find((i) => T[i].data);
      if (x === undefined || c === undefined || !near(scalar(c), 1 / 6)) continue;
      const ak = producer.get(relu6.inputs[0]);
      if (ak === undefined) continue;
      const add = model.operators[ak];
      if (add.code !== Op.ADD || add.options?.fields.length || !single(add.outputs[0]) || !add.inputs.includes(x)) continue;
      const three = add.inputs.find((i) => i !== x);
      if (three === undefined || !near(scalar(three), 3)) continue;
      model.operators[k] = { code: Op.HARD_SWISH, inputs: [x], outputs: op.outputs, onnxNode: op.onnxNode };
      removed.add(mk).add(rk).add(ak);
      return;
    }
  });
  model.operators = model.operators.filter((_, k) => !removed.has(k));
  return removed.size / 3;
}
