/**
 * ONNX → TFLite graph conversion (FP32). TFLite's builtin kernels are NHWC, while ONNX convolutions
 * are NCHW; the default models were imported from NHWC TF graphs, so every conv sits between a
 * Transpose pair. Each ONNX value therefore carries a layout: "plain" (the TFLite tensor has the ONNX
 * shape) or "nchw" (an ONNX NCHW value stored NHWC). A Transpose that only moves between the two
 * becomes an alias, so the pairs vanish; a TRANSPOSE op is emitted only where a layout must really
 * change (e.g. before a Reshape of an NCHW value).
 *
 * Graph outputs that depend on ops without a TFLite builtin here (CenterNet's TopK/Gather/Mod
 * decoding tail) are left out and reported in `dropped`; the exported model ends at the outputs
 * before them (heatmap and box sizes), which the decoder on the device reads instead.
 */
import { attr, convPadding, samePadding, type OnnxModel, type OnnxNode, type OnnxValueInfo } from '../../convert/onnx/model.js';
import { ModelError } from '../../../../agent/src/util/errors.js';
import { binaryConst, count, f32Bytes, fromOnnx, i32Bytes, transposeConst, broadcastShape, type ConstValue } from './consts.js';
import { F, Op, Options, Padding, TensorType } from './schema.js';
import type { TflModel, TflOperator, TflOptionField } from './model.js';
import { planResize } from './resize.js';

type Layout = 'plain' | 'nchw';
interface Val { index: number; shape: number[]; layout: Layout }

const NCHW_STORED = [0, 2, 3, 1];
const CONVERTIBLE = new Set(['Conv', 'MaxPool', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'Clip', 'Sigmoid', 'Identity', 'Transpose',
  'Reshape', 'Concat', 'ReduceMean', 'Resize', 'Shape', 'Cast', 'ConstantOfShape', 'Unsqueeze']);

export interface TfliteConversion {
  model: TflModel;
  /** Graph outputs left out, with the op that stopped them. */
  dropped: Array<{ output: string; reason: string }>;
  /** Number of ONNX Transpose nodes that became aliases (no op in the TFLite graph). */
  transposesRemoved: number;
}

export interface ConvertOptions {
  /** Export only these graph outputs (default: every output whose ops all convert). */
  outputs?: string[];
  /** Which export this graph is for, in messages: the Core ML layers are built from this TFLite graph. */
  target?: 'tflite' | 'coreml';
  /**
   * The shape a device feeds each named graph input (from the metadata's preprocess: layout and
   * modelInputSize). TFLite and Core ML shapes are static: an input's dynamic sizes are taken from
   * here, and the export is refused where nothing gives them.
   */
  inputShapes?: Readonly<Record<string, readonly number[]>>;
}

function storedPerm(layout: Layout, rank: number): number[] {
  return layout === 'nchw' ? NCHW_STORED : Array.from({ length: rank }, (_, i) => i);
}

function invert(p: readonly number[]): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((v, i) => { inv[v] = i; });
  return inv;
}

const isIdentity = (p: readonly number[]): boolean => p.every((v, i) => v === i);
const i32 = (id: number, value: number): TflOptionField => ({ id, kind: 'i32', value });
const i8 = (id: number, value: number): TflOptionField => ({ id, kind: 'i8', value });

export function onnxToTflite(onnx: OnnxModel, opts: ConvertOptions = {}): TfliteConversion {
  return new Converter(onnx, opts.target === 'coreml' ? 'Core ML' : 'TFLite').run(opts);
}

class Converter {
  private readonly model: TflModel;
  private readonly values = new Map<string, Val>();
  private readonly consts = new Map<string, ConstValue>();
  private readonly layoutCache = new Map<string, Val>();
  private transposesRemoved = 0;
  /** The ONNX node being converted: the ops it emits carry its name, for messages. */
  private node: string | undefined;

  constructor(private readonly onnx: OnnxModel, private readonly label: 'TFLite' | 'Core ML') {
    this.model = { description: `Edge Fleet export of ${onnx.graph.name || 'model'}`, tensors: [], operators: [], inputs: [], outputs: [] };
  }

  run(opts: ConvertOptions): TfliteConversion {
    const g = this.onnx.graph;
    for (const [name, t] of g.initializers) this.consts.set(name, fromOnnx(t));
    const producer = new Map<string, OnnxNode>();
    for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);

    // Which values can be computed with the ops we map (memoised walk up the graph).
    const blocker = new Map<string, string | null>();
    const blockedBy = (name: string): string | null => {
      if (!name || this.consts.has(name) || g.inputs.some((i) => i.name === name)) return null;
      if (blocker.has(name)) return blocker.get(name)!;
      const n = producer.get(name);
      let why: string | null = n ? null : `no producer for ${name}`;
      if (n && !CONVERTIBLE.has(n.opType)) why = `${n.opType} (${n.name || n.outputs[0]}) has no ${this.label} mapping in this exporter`;
      blocker.set(name, why);
      if (n && !why) for (const i of n.inputs) { why = blockedBy(i); if (why) break; }
      blocker.set(name, why);
      return why;
    };
    const wanted = opts.outputs ?? g.outputs.map((o) => o.name);
    const dropped: TfliteConversion['dropped'] = [];
    const outputs = wanted.filter((o) => {
      const why = blockedBy(o);
      if (why) dropped.push({ output: o, reason: why });
      return !why;
    });
    if (outputs.length === 0) throw new ModelError(`No output of ${g.name} can be exported to ${this.label}: ${dropped.map((d) => `${d.output}: ${d.reason}`).join('; ')}`);

    // Nodes the kept outputs need.
    const needed = new Set<OnnxNode>();
    const stack = [...outputs];
    while (stack.length) {
      const n = producer.get(stack.pop()!);
      if (!n || needed.has(n)) continue;
      needed.add(n);
      stack.push(...n.inputs.filter(Boolean));
    }
    for (const input of g.inputs) {
      if (this.consts.has(input.name)) continue;
      const shape = this.inputShape(input, opts.inputShapes?.[input.name]);
      const index = this.addTensor(input.name, shape, TensorType.FLOAT32);
      this.values.set(input.name, { index, shape, layout: 'plain' });
      this.model.inputs.push(index);
    }
    for (const n of g.nodes) if (needed.has(n)) this.convertNode(n);
    for (const o of outputs) {
      const v = this.toLayout(this.get(o), 'plain');
      this.model.tensors[v.index].name = o;
      this.model.outputs.push(v.index);
    }
    return { model: this.model, dropped, transposesRemoved: this.transposesRemoved };
  }

  /** A graph input's static shape: its fixed sizes, the fed shape for the others, batch 1 if nothing gives it. */
  private inputShape(input: OnnxValueInfo, fed: readonly number[] | undefined): number[] {
    const dims = input.shape ?? fed?.map(() => null);
    if (!dims) throw new ModelError(`${this.label} export: input ${input.name} has no shape in the model, and no metadata gives it; export a model with its model.meta.json beside it (fleetctl model import writes one)`);
    if (fed && fed.length !== dims.length) throw new ModelError(`${this.label} export: input ${input.name} has ${dims.length} dimensions, but the metadata's preprocess feeds [${fed.join(', ')}]`);
    return dims.map((d, axis) => {
      if (typeof d === 'number' && d > 0) return d;
      if (fed) return fed[axis];
      // One frame at a time: the agent and both bridges run batch 1.
      if (axis === 0) return 1;
      throw new ModelError(`${this.label} export: input ${input.name} has the dynamic size ${JSON.stringify(d ?? '?')} on axis ${axis} of [${dims.map((x) => x ?? '?').join(', ')}]; ${this.label} needs fixed sizes, which come from the preprocess width, height and layout in the model's metadata, and none was given: put model.meta.json beside the model (fleetctl model import writes one)`);
    });
  }

  // ---- tensors -------------------------------------------------------------------------------

  private addTensor(name: string, shape: number[], type: number, data?: Uint8Array): number {
    this.model.tensors.push({ name, shape, type, data });
    return this.model.tensors.length - 1;
  }

  private emit(code: number, inputs: number[], outputs: number[], options?: TflOperator['options']): void {
    this.model.operators.push({ code, inputs, outputs, options, onnxNode: this.node });
  }

  private constTensor(name: string, c: ConstValue, type: number = c.isFloat ? TensorType.FLOAT32 : TensorType.INT32): number {
    const data = type === TensorType.FLOAT32 ? f32Bytes(c.values) : i32Bytes(c.values);
    return this.addTensor(name, [...c.dims], type, data);
  }

  private get(name: string): Val {
    const v = this.values.get(name);
    if (v) return v;
    const c = this.consts.get(name);
    if (c) {
      const val: Val = { index: this.constTensor(name, c), shape: [...c.dims], layout: 'plain' };
      this.values.set(name, val);
      return val;
    }
    throw new ModelError(`${this.label} export: value ${name} is used before it is produced`);
  }

  /** The value in the wanted layout, adding a TRANSPOSE op when the stored order differs. */
  private toLayout(v: Val, layout: Layout): Val {
    if (v.layout === layout || v.shape.length !== 4) return v;
    const key = `${v.index}|${layout}`;
    const cached = this.layoutCache.get(key);
    if (cached) return cached;
    const sIn = storedPerm(v.layout, 4), sOut = storedPerm(layout, 4);
    const inv = invert(sIn);
    const q = sOut.map((a) => inv[a]);
    const shape = sOut.map((a) => v.shape[a]);
    const t = this.model.tensors[v.index];
    const perm = this.addTensor(`${t.name}/perm`, [4], TensorType.INT32, i32Bytes(q));
    const index = this.addTensor(`${t.name}/${layout}`, shape, t.type);
    this.emit(Op.TRANSPOSE, [v.index, perm], [index]);
    const out: Val = { index, shape: [...v.shape], layout };
    this.layoutCache.set(key, out);
    return out;
  }

  /** A constant operand shaped for a binary op whose other side is in `layout` at `rank`. */
  private constOperand(name: string, c: ConstValue, layout: Layout, rank: number): number {
    if (layout === 'plain' || count(c.dims) === 1) return this.constTensor(name, count(c.dims) === 1 ? { ...c, dims: [] } : c);
    const dims = [...new Array<number>(rank - c.dims.length).fill(1), ...c.dims];
    return this.constTensor(name, transposeConst({ ...c, dims }, NCHW_STORED));
  }

  private out(n: OnnxNode, shape: number[], layout: Layout, k = 0): number {
    const tflShape = storedPerm(layout, shape.length).map((a) => shape[a]);
    const index = this.addTensor(n.outputs[k], tflShape, TensorType.FLOAT32);
    this.values.set(n.outputs[k], { index, shape, layout });
    return index;
  }

  // ---- nodes ---------------------------------------------------------------------------------

  private convertNode(n: OnnxNode): void {
    this.node = n.name || n.outputs[0];
    if (n.inputs.filter(Boolean).every((i) => this.consts.has(i)) && this.fold(n)) return;
    switch (n.opType) {
      case 'Identity': this.values.set(n.outputs[0], this.get(n.inputs[0])); return;
      case 'Transpose': return this.transpose(n);
      case 'Conv': return this.conv(n);
      case 'MaxPool': return this.maxPool(n);
      case 'Add': return this.binary(n, Op.ADD, Options.AddOptions);
      case 'Sub': return this.binary(n, Op.SUB, Options.SubOptions);
      case 'Mul': return this.binary(n, Op.MUL, Options.MulOptions);
      case 'Div': return this.binary(n, Op.DIV, Options.DivOptions);
      case 'Relu': return this.unary(n, Op.RELU);
      case 'Sigmoid': return this.unary(n, Op.LOGISTIC);
      case 'Clip': return this.clip(n);
      case 'ReduceMean': return this.reduceMean(n);
      case 'Concat': return this.concat(n);
      case 'Resize': return this.resize(n);
      case 'Reshape': return this.reshape(n);
      case 'Shape': {
        const v = this.get(n.inputs[0]);
        const start = (attr(n, 'start')?.value as number | undefined) ?? 0;
        const end = (attr(n, 'end')?.value as number | undefined) ?? v.shape.length;
        const dims = v.shape.slice(start, end);
        this.consts.set(n.outputs[0], { dims: [dims.length], values: Float64Array.from(dims), isFloat: false });
        return;
      }
      default:
        throw new ModelError(`${this.label} export: ${n.opType} (${n.name || n.outputs[0]}) with non-constant inputs is not supported`);
    }
  }

  /** Constant folding of shape arithmetic; returns false when the op is not foldable here. */
  private fold(n: OnnxNode): boolean {
    const c = (k: number): ConstValue => this.consts.get(n.inputs[k])!;
    let r: ConstValue | undefined;
    switch (n.opType) {
      case 'Cast': { const to = attr(n, 'to')?.value as number; r = { ...c(0), isFloat: to === 1 || to === 10 || to === 11 }; break; }
      case 'Identity': r = c(0); break;
      case 'ConstantOfShape': {
        const dims = Array.from(c(0).values);
        const v = attr(n, 'value');
        const fill = v && v.type === 'tensor' ? fromOnnx(v.value) : { values: Float64Array.of(0), isFloat: true, dims: [1] };
        r = { dims, values: new Float64Array(count(dims)).fill(fill.values[0]), isFloat: fill.isFloat };
        break;
      }
      case 'Concat': {
        const parts = n.inputs.map((_, k) => c(k));
        if (parts.some((p) => p.dims.length !== 1)) return false;
        const values = Float64Array.from(parts.flatMap((p) => Array.from(p.values)));
        r = { dims: [values.length], values, isFloat: parts.some((p) => p.isFloat) };
        break;
      }
      case 'Unsqueeze': {
        const axes = n.inputs[1] ? Array.from(c(1).values) : (attr(n, 'axes')?.value as number[]);
        const dims = [...c(0).dims];
        const rank = dims.length + axes.length;
        for (const a of axes.map((x) => (x < 0 ? x + rank : x)).sort((x, y) => x - y)) dims.splice(a, 0, 1);
        r = { ...c(0), dims };
        break;
      }
      case 'Add': r = binaryConst(c(0), c(1), (x, y) => x + y); break;
      case 'Sub': r = binaryConst(c(0), c(1), (x, y) => x - y); break;
      case 'Mul': r = binaryConst(c(0), c(1), (x, y) => x * y); break;
      case 'Div': r = binaryConst(c(0), c(1), (x, y) => x / y); break;
      default: return false;
    }
    this.consts.set(n.outputs[0], r);
    return true;
  }

  private transpose(n: OnnxNode): void {
    const v = this.get(n.inputs[0]);
    const p = attr(n, 'perm')?.value as number[] | undefined ?? v.shape.map((_, i) => v.shape.length - 1 - i);
    const shape = p.map((a) => v.shape[a]);
    const inv = invert(storedPerm(v.layout, v.shape.length));
    for (const layout of ['plain', 'nchw'] as Layout[]) {
      if (layout === 'nchw' && shape.length !== 4) continue;
      const q = storedPerm(layout, shape.length).map((a) => inv[p[a]]);
      if (isIdentity(q)) {
        this.values.set(n.outputs[0], { index: v.index, shape, layout });
        this.transposesRemoved++;
        return;
      }
    }
    const q = p.map((a) => inv[a]);
    const perm = this.addTensor(`${n.outputs[0]}/perm`, [q.length], TensorType.INT32, i32Bytes(q));
    this.emit(Op.TRANSPOSE, [v.index, perm], [this.out(n, shape, 'plain')]);
  }

  /** TFLite SAME (pad_before = floor(total/2), TF's rule), VALID, or explicit pads [top, left, bottom, right]. */
  private padding(n: OnnxNode, inHW: number[], kernel: number[], strides: number[], dil: number[]): { mode: number; pads?: number[]; outHW: number[] } {
    const autoPad = attr(n, 'auto_pad')?.value as string | undefined;
    const same = samePadding(inHW, kernel, strides, dil);
    if (autoPad === 'SAME_UPPER') return { mode: Padding.SAME, outHW: same.outHW };
    if (autoPad && autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new ModelError(`${this.label} export: auto_pad ${autoPad} on ${n.name} is not supported`);
    const p = convPadding(n, inHW, kernel, strides, dil);
    const pads = [p.before[0], p.before[1], p.after[0], p.after[1]];
    if (pads.every((v) => v === 0)) return { mode: Padding.VALID, outHW: p.outHW };
    if (same.before.every((v, i) => v === p.before[i] && same.after[i] === p.after[i] && same.outHW[i] === p.outHW[i])) return { mode: Padding.SAME, outHW: p.outHW };
    return { mode: Padding.VALID, pads, outHW: p.outHW };
  }

  private explicitPad(v: Val, pads: number[], name: string): Val {
    const paddings = [0, 0, pads[0], pads[2], pads[1], pads[3], 0, 0];
    const pt = this.addTensor(`${name}/paddings`, [4, 2], TensorType.INT32, i32Bytes(paddings));
    const shape = [v.shape[0], v.shape[1], v.shape[2] + pads[0] + pads[2], v.shape[3] + pads[1] + pads[3]];
    const index = this.addTensor(`${name}/pad`, NCHW_STORED.map((a) => shape[a]), TensorType.FLOAT32);
    this.emit(Op.PAD, [v.index, pt], [index]);
    return { index, shape, layout: 'nchw' };
  }

  private conv(n: OnnxNode): void {
    let x = this.toLayout(this.get(n.inputs[0]), 'nchw');
    const w = this.consts.get(n.inputs[1]);
    if (!w) throw new ModelError(`${this.label} export: Conv ${n.name} has non-constant weights`);
    const [o, ipg, kh, kw] = w.dims;
    const group = (attr(n, 'group')?.value as number | undefined) ?? 1;
    const strides = (attr(n, 'strides')?.value as number[] | undefined) ?? [1, 1];
    const dil = (attr(n, 'dilations')?.value as number[] | undefined) ?? [1, 1];
    const cin = x.shape[1];
    const pad = this.padding(n, [x.shape[2], x.shape[3]], [kh, kw], strides, dil);
    if (pad.pads) x = this.explicitPad(x, pad.pads, n.outputs[0]);
    const bias = n.inputs[2] ? this.consts.get(n.inputs[2]) : { dims: [o], values: new Float64Array(o), isFloat: true };
    if (!bias) throw new ModelError(`${this.label} export: Conv ${n.name} has a non-constant bias`);
    const b = this.constTensor(`${n.outputs[0]}/bias`, bias);
    const shape = [x.shape[0], o, pad.outHW[0], pad.outHW[1]];
    if (group === 1) {
      // CONV_2D filter is [out, kh, kw, in] (OHWI).
      const f = this.constTensor(`${n.outputs[0]}/filter`, transposeConst(w, [0, 2, 3, 1]));
      this.emit(Op.CONV_2D, [x.index, f, b], [this.out(n, shape, 'nchw')], {
        type: Options.Conv2DOptions, fields: [i8(F.Conv2DOptions.padding, pad.mode), i32(F.Conv2DOptions.stride_w, strides[1]), i32(F.Conv2DOptions.stride_h, strides[0]),
          i32(F.Conv2DOptions.dilation_w_factor, dil[1]), i32(F.Conv2DOptions.dilation_h_factor, dil[0])],
      });
    } else if (group === cin && ipg === 1) {
      // DEPTHWISE_CONV_2D filter is [1, kh, kw, out] with out = in * depth_multiplier.
      const f = this.constTensor(`${n.outputs[0]}/filter`, transposeConst(w, [1, 2, 3, 0]));
      this.emit(Op.DEPTHWISE_CONV_2D, [x.index, f, b], [this.out(n, shape, 'nchw')], {
        type: Options.DepthwiseConv2DOptions, fields: [i8(F.DepthwiseConv2DOptions.padding, pad.mode), i32(F.DepthwiseConv2DOptions.stride_w, strides[1]),
          i32(F.DepthwiseConv2DOptions.stride_h, strides[0]), i32(F.DepthwiseConv2DOptions.depth_multiplier, o / cin),
          i32(F.DepthwiseConv2DOptions.dilation_w_factor, dil[1]), i32(F.DepthwiseConv2DOptions.dilation_h_factor, dil[0])],
      });
    } else {
      throw new ModelError(`${this.label} export: grouped Conv ${n.name} (group ${group}, ${cin} input channels) has no TFLite builtin`);
    }
  }

  private maxPool(n: OnnxNode): void {
    const name = n.name || n.outputs[0];
    const k = attr(n, 'kernel_shape')?.value as number[];
    if (k.length !== 2) throw new ModelError(`${this.label} export: MaxPool ${name} has a ${k.length}-D kernel; TFLite's MAX_POOL_2D pools two axes`);
    if (n.outputs[1]) throw new ModelError(`${this.label} export: MaxPool ${name} outputs its Indices, which TFLite's MAX_POOL_2D does not`);
    const dil = (attr(n, 'dilations')?.value as number[] | undefined) ?? [1, 1];
    if (dil.some((d) => d !== 1)) throw new ModelError(`${this.label} export: MaxPool ${name} dilations [${dil.join(', ')}] have no TFLite equivalent (MAX_POOL_2D has no dilation)`);
    const x = this.toLayout(this.get(n.inputs[0]), 'nchw');
    const strides = (attr(n, 'strides')?.value as number[] | undefined) ?? [1, 1];
    const pad = this.padding(n, [x.shape[2], x.shape[3]], k, strides, [1, 1]);
    // ceil_mode rounds the output size up (a last window hanging over the end); TFLite rounds down.
    // Equal exactly when every window fits: (padded size − kernel) a multiple of the stride.
    const ceilMode = (attr(n, 'ceil_mode')?.value as number | undefined) ?? 0;
    const autoPad = (attr(n, 'auto_pad')?.value as string | undefined) ?? 'NOTSET';
    if (ceilMode !== 0 && (autoPad === 'NOTSET' || autoPad === 'VALID')) {
      const p = convPadding(n, [x.shape[2], x.shape[3]], k, strides, [1, 1]);
      const axis = [0, 1].find((i) => (x.shape[2 + i] + p.before[i] + p.after[i] - k[i]) % strides[i] !== 0);
      if (axis !== undefined) {
        throw new ModelError(`${this.label} export: MaxPool ${name} ceil_mode 1 gives ${['height', 'width'][axis]} ${p.outHW[axis] + 1} where TFLite's MAX_POOL_2D gives ${p.outHW[axis]} (kernel ${k[axis]}, stride ${strides[axis]} over ${x.shape[2 + axis]} with pads); re-export the model with ceil_mode 0 or pads that make the windows fit`);
      }
    }
    // Explicit pads would need -inf padding (ONNX ignores pad cells in max pooling); only SAME/VALID map.
    if (pad.pads) throw new ModelError(`${this.label} export: MaxPool ${n.name} pads ${pad.pads.join(',')} are neither SAME nor VALID`);
    const shape = [x.shape[0], x.shape[1], pad.outHW[0], pad.outHW[1]];
    this.emit(Op.MAX_POOL_2D, [x.index], [this.out(n, shape, 'nchw')], {
      type: Options.Pool2DOptions, fields: [i8(F.Pool2DOptions.padding, pad.mode), i32(F.Pool2DOptions.stride_w, strides[1]), i32(F.Pool2DOptions.stride_h, strides[0]),
        i32(F.Pool2DOptions.filter_width, k[1]), i32(F.Pool2DOptions.filter_height, k[0])],
    });
  }

  /** Layout for an op over several inputs: NCHW when any non-constant rank-4 input is stored NCHW. */
  private commonLayout(names: string[], rank: number): Layout {
    if (rank !== 4) return 'plain';
    return names.some((nm) => !this.consts.has(nm) && this.values.get(nm)?.layout === 'nchw') ? 'nchw' : 'plain';
  }

  private operand(name: string, layout: Layout, rank: number, tag: string): number {
    const c = this.consts.get(name);
    if (c && !this.values.has(name)) return this.constOperand(`${name}/${tag}`, c, layout, rank);
    return this.toLayout(this.get(name), layout).index;
  }

  private binary(n: OnnxNode, code: number, optionsType: number): void {
    const shapes = n.inputs.map((i) => this.consts.get(i)?.dims ?? this.get(i).shape);
    const shape = broadcastShape(shapes[0], shapes[1]);
    const layout = this.commonLayout(n.inputs, shape.length);
    const ins = n.inputs.map((i) => this.operand(i, layout, shape.length, n.outputs[0]));
    this.emit(code, ins, [this.out(n, shape, layout)], { type: optionsType, fields: [] });
  }

  private unary(n: OnnxNode, code: number): void {
    const x = this.get(n.inputs[0]);
    this.emit(code, [x.index], [this.out(n, [...x.shape], x.layout)]);
  }

  private clip(n: OnnxNode): void {
    const scalar = (k: number, attrName: string, dflt: number): number => {
      if (!n.inputs[k]) return (attr(n, attrName)?.value as number | undefined) ?? dflt;
      const c = this.consts.get(n.inputs[k]);
      if (!c) throw new ModelError(`${this.label} export: Clip ${n.name || n.outputs[0]} takes its ${attrName} from the computed value ${n.inputs[k]}; only a constant bound maps`);
      return c.values[0];
    };
    const lo = scalar(1, 'min', -Infinity), hi = scalar(2, 'max', Infinity);
    const x = this.get(n.inputs[0]);
    if (lo === 0 && hi === 6) return this.unary(n, Op.RELU6);
    if (lo === -1 && hi === 1) return this.unary(n, Op.RELU_N1_TO_1);
    if (lo === 0 && hi === Infinity) return this.unary(n, Op.RELU);
    let cur = x.index;
    const steps: Array<[number, number]> = [];
    if (lo > -Infinity) steps.push([Op.MAXIMUM, lo]);
    if (hi < Infinity) steps.push([Op.MINIMUM, hi]);
    steps.forEach(([code, value], k) => {
      const c = this.constTensor(`${n.outputs[0]}/bound${k}`, { dims: [], values: Float64Array.of(value), isFloat: true });
      const last = k === steps.length - 1;
      const next = last ? this.out(n, [...x.shape], x.layout) : this.addTensor(`${n.outputs[0]}/lo`, this.model.tensors[x.index].shape, TensorType.FLOAT32);
      this.emit(code, [cur, c], [next]);
      cur = next;
    });
  }

  private reduceMean(n: OnnxNode): void {
    const x = this.get(n.inputs[0]);
    const rank = x.shape.length;
    const axesInput = n.inputs[1] ? this.consts.get(n.inputs[1]) : undefined;
    if (n.inputs[1] && !axesInput) throw new ModelError(`${this.label} export: ReduceMean ${n.name || n.outputs[0]} takes its axes from the computed value ${n.inputs[1]}; only constant axes map`);
    const given = axesInput ? Array.from(axesInput.values) : (attr(n, 'axes')?.value as number[] | undefined) ?? [];
    // No axes: all of them, or none with noop_with_empty_axes (opset 18), which makes it an Identity.
    if (given.length === 0 && ((attr(n, 'noop_with_empty_axes')?.value as number | undefined) ?? 0) !== 0) {
      this.values.set(n.outputs[0], x);
      return;
    }
    const axes = (given.length ? given : x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
    const keep = ((attr(n, 'keepdims')?.value as number | undefined) ?? 1) === 1;
    const v = keep ? x : this.toLayout(x, 'plain');
    const inv = invert(storedPerm(v.layout, rank));
    const tflAxes = axes.map((a) => inv[a]);
    const at = this.addTensor(`${n.outputs[0]}/axes`, [tflAxes.length], TensorType.INT32, i32Bytes(tflAxes));
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    this.emit(Op.MEAN, [v.index, at], [this.out(n, shape, keep ? v.layout : 'plain')], { type: Options.ReducerOptions, fields: [i8(F.ReducerOptions.keep_dims, keep ? 1 : 0)] });
  }

  private concat(n: OnnxNode): void {
    const shapes = n.inputs.map((i) => this.consts.get(i)?.dims ?? this.get(i).shape);
    const rank = shapes[0].length;
    const axisRaw = attr(n, 'axis')?.value as number;
    const axis = axisRaw < 0 ? axisRaw + rank : axisRaw;
    const layout = this.commonLayout(n.inputs, rank);
    const ins = n.inputs.map((i) => this.operand(i, layout, rank, n.outputs[0]));
    const shape = [...shapes[0]];
    shape[axis] = shapes.reduce((s, d) => s + d[axis], 0);
    const tflAxis = invert(storedPerm(layout, rank))[axis];
    this.emit(Op.CONCATENATION, ins, [this.out(n, shape, layout)], { type: Options.ConcatenationOptions, fields: [i32(F.ConcatenationOptions.axis, tflAxis)] });
  }

  private resize(n: OnnxNode): void {
    const refuse = (what: string): never => { throw new ModelError(`${this.label} export: Resize ${n.name || n.outputs[0]} ${what}`); };
    const v = this.get(n.inputs[0]);
    if (v.shape.length !== 4) refuse(`of a rank-${v.shape.length} tensor has no TFLite equivalent (TFLite resizes NHWC images)`);
    const x = this.toLayout(v, 'nchw');
    // Opset 11+: inputs X, roi, scales, sizes; `axes` (opset 18) says which axes scales/sizes cover.
    const axes = ((attr(n, 'axes')?.value as number[] | undefined) ?? [0, 1, 2, 3]).map((a) => (a < 0 ? a + 4 : a));
    const sizes = n.inputs[3] ? this.consts.get(n.inputs[3]) : undefined;
    const scales = n.inputs[2] ? this.consts.get(n.inputs[2]) : undefined;
    const per = (c: ConstValue, axis: number, dflt: number): number => { const k = axes.indexOf(axis); return k < 0 ? dflt : c.values[k]; };
    let hw: number[];
    if (sizes && sizes.values.length) {
      if ([0, 1].some((a) => per(sizes, a, x.shape[a]) !== x.shape[a])) refuse(`sizes [${Array.from(sizes.values).join(', ')}] change the batch or channel axis, which TFLite does not resize`);
      const policy = (attr(n, 'keep_aspect_ratio_policy')?.value as string | undefined) ?? 'stretch';
      if (policy !== 'stretch') refuse(`keep_aspect_ratio_policy ${policy} has no TFLite equivalent (stretch does)`);
      hw = [per(sizes, 2, x.shape[2]), per(sizes, 3, x.shape[3])];
    } else if (scales && scales.values.length) {
      if ([0, 1].some((a) => per(scales, a, 1) !== 1)) refuse(`scales [${Array.from(scales.values).join(', ')}] change the batch or channel axis, which TFLite does not resize`);
      const s = [per(scales, 2, 1), per(scales, 3, 1)];
      // ONNX takes floor(in·scale) samples at positions from the scale itself, TFLite from in/out: the
      // same only when in·scale is a whole size (a float32 scale such as 1/3 within its rounding).
      hw = s.map((sc, k) => Math.floor(Math.fround(x.shape[2 + k] * sc)));
      s.forEach((sc, k) => {
        const exact = x.shape[2 + k] * sc;
        if (hw[k] < 1 || Math.abs(exact - hw[k]) > 1e-6 * Math.max(1, exact)) {
          refuse(`scale ${sc} on ${['height', 'width'][k]} ${x.shape[2 + k]} gives ${exact}, not a whole size: ONNX samples at x/${sc}, TFLite at x·${x.shape[2 + k]}/${hw[k]}; give sizes, or scales that give whole sizes`);
        }
      });
    } else {
      return refuse('needs constant sizes or scales');
    }
    const antialias = (attr(n, 'antialias')?.value as number | undefined) ?? 0;
    if (antialias !== 0 && hw.some((d, k) => d < x.shape[2 + k])) refuse('antialias 1 when downscaling has no TFLite equivalent');
    // exclude_outside needs no check: nearest and 2-tap linear never weight a sample outside the input
    // once it is clamped, which both ONNX (onnxruntime) and TFLite do.
    const plan = planResize({
      node: n.name || n.outputs[0],
      mode: (attr(n, 'mode')?.value as string | undefined) ?? 'nearest',
      coordinateTransformationMode: (attr(n, 'coordinate_transformation_mode')?.value as string | undefined) ?? 'half_pixel',
      nearestMode: (attr(n, 'nearest_mode')?.value as string | undefined) ?? 'round_prefer_floor',
      inHW: [x.shape[2], x.shape[3]], outHW: hw, exporter: this.label,
    });
    const size = this.addTensor(`${n.outputs[0]}/size`, [2], TensorType.INT32, i32Bytes(hw));
    const shape = [x.shape[0], x.shape[1], hw[0], hw[1]];
    const align = plan.alignCorners ? 1 : 0, half = plan.halfPixelCenters ? 1 : 0;
    if (plan.op === 'bilinear') {
      this.emit(Op.RESIZE_BILINEAR, [x.index, size], [this.out(n, shape, 'nchw')], {
        type: Options.ResizeBilinearOptions, fields: [i8(F.ResizeOptions.align_corners, align), i8(F.ResizeOptions.half_pixel_centers, half)],
      });
    } else {
      this.emit(Op.RESIZE_NEAREST_NEIGHBOR, [x.index, size], [this.out(n, shape, 'nchw')], {
        type: Options.ResizeNearestNeighborOptions, fields: [i8(F.ResizeNearestNeighborOptions.align_corners, align), i8(F.ResizeNearestNeighborOptions.half_pixel_centers, half)],
      });
    }
  }

  private reshape(n: OnnxNode): void {
    const x = this.toLayout(this.get(n.inputs[0]), 'plain');
    const spec = this.consts.get(n.inputs[1]);
    if (!spec) throw new ModelError(`${this.label} export: Reshape ${n.name} needs a constant shape`);
    // allowzero 1 makes a 0 in the shape a size of zero, not "copy this dimension".
    if (((attr(n, 'allowzero')?.value as number | undefined) ?? 0) !== 0 && spec.values.includes(0)) {
      throw new ModelError(`${this.label} export: Reshape ${n.name || n.outputs[0]} with allowzero 1 and a 0 in its shape makes an empty tensor, which TFLite does not hold`);
    }
    const shape = Array.from(spec.values).map((d, i) => (d === 0 ? x.shape[i] : d));
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const full = shape.map((d) => (d === -1 ? count(x.shape) / known : d));
    const st = this.addTensor(`${n.outputs[0]}/shape`, [full.length], TensorType.INT32, i32Bytes(full));
    this.emit(Op.RESHAPE, [x.index, st], [this.out(n, full, 'plain')], { type: Options.ReshapeOptions, fields: [{ id: F.ReshapeOptions.new_shape, kind: 'i32vec', value: full }] });
  }
}
