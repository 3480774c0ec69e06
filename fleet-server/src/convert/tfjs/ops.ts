/**
 * TF op → ONNX op mappers (ONNX operator semantics per onnx/docs/Operators.md at opset 17; TF op
 * semantics per tensorflow/core/ops/*.cc). Tensors stay NHWC as in TF; the spatial ops that ONNX
 * only defines for NCHW (Conv, pooling, Resize) are wrapped in Transposes, which
 * `cancelTransposes` removes where two meet.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { DataType, floatTensor, type OnnxAttribute } from '../onnx/model.js';
import type { TfNode } from './reader.js';
import { attrBool, attrFloat, attrInt, attrInts, attrString, attrStrings, attrType, onnxTypeOf, type ConvertContext } from './context.js';

export type OpMapper = (node: TfNode, ctx: ConvertContext) => void;

const ins = (n: TfNode): string[] => (n.input ?? []).filter((i) => !i.startsWith('^'));
const ints = (name: string, value: number[]): OnnxAttribute => ({ name, type: 'ints', value });
const int = (name: string, value: number): OnnxAttribute => ({ name, type: 'int', value });
const str = (name: string, value: string): OnnxAttribute => ({ name, type: 'string', value });

/** Same-named elementwise ops with numpy broadcasting in both frameworks. */
function direct(onnxOp: string): OpMapper {
  return (n, ctx) => ctx.add(onnxOp, ins(n).map((i) => ctx.input(i)), [ctx.valueName(n.name)], [], n.name);
}

/** Activation after a fused conv, applied in NCHW (before the transpose back). */
function activation(n: TfNode, ctx: ConvertContext, op: string, x: string, out: string): void {
  switch (op) {
    case 'Relu': ctx.add('Relu', [x], [out]); return;
    case 'Relu6': ctx.add('Clip', [x, ctx.float(n.name, 'zero', [0], []), ctx.float(n.name, 'six', [6], [])], [out]); return;
    case 'Elu': ctx.add('Elu', [x], [out]); return;
    case 'Sigmoid': ctx.add('Sigmoid', [x], [out]); return;
    case 'Tanh': ctx.add('Tanh', [x], [out]); return;
    case 'LeakyRelu': ctx.add('LeakyRelu', [x], [out], [{ name: 'alpha', type: 'float', value: attrFloat(n, 'leakyrelu_alpha', 0.2) }]); return;
    default: throw new ModelError(`${n.op} node "${n.name}" fuses the activation ${op}, which the TF.js importer does not map (Relu, Relu6, Elu, Sigmoid, Tanh, LeakyRelu are mapped)`);
  }
}

function paddingAttrs(n: TfNode): OnnxAttribute[] {
  const padding = attrString(n, 'padding') ?? 'VALID';
  if (padding === 'SAME') return [str('auto_pad', 'SAME_UPPER')]; // TF SAME puts the odd pixel at the end, as SAME_UPPER does
  if (padding === 'VALID') return [str('auto_pad', 'VALID')];
  const p = attrInts(n, 'explicit_paddings'); // NHWC pairs: [n0,n1,h0,h1,w0,w1,c0,c1]
  return [ints('pads', [p[2] ?? 0, p[4] ?? 0, p[3] ?? 0, p[5] ?? 0])];
}

function requireNhwc(n: TfNode): void {
  const fmt = attrString(n, 'data_format') ?? 'NHWC';
  if (fmt !== 'NHWC') throw new ModelError(`${n.op} node "${n.name}" uses data_format ${fmt}; the TF.js importer maps NHWC only (TF.js itself runs NHWC)`);
}

function conv(depthwise: boolean): OpMapper {
  return (n, ctx) => {
    requireNhwc(n);
    const [xRef, wRef, ...args] = ins(n);
    const strides = attrInts(n, 'strides');
    const dil = attrInts(n, 'dilations');
    const w = ctx.constant(wRef);
    if (!w || w.dtype !== 'float32' || w.shape.length !== 4) throw new ModelError(`${n.op} node "${n.name}": its filter must be a float constant of rank 4 for the ONNX export`);
    const [kh, kw, cin, cout] = w.shape; // TF: HWIO (conv) or HW,Cin,multiplier (depthwise)
    const src = w.values as Float32Array;
    const outC = depthwise ? cin * cout : cout;
    const oihw = new Float32Array(src.length);
    // ONNX Conv weight is [M, C/group, kH, kW]; depthwise output channel c*mult+m reads input channel c.
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) {
      const v = src[((y * kw + x) * cin + i) * cout + o];
      if (depthwise) oihw[(((i * cout + o) * 1) * kh + y) * kw + x] = v;
      else oihw[((o * cin + i) * kh + y) * kw + x] = v;
    }
    const wName = ctx.addInitializer(n.name, 'weight_oihw', floatTensor(depthwise ? [outC, 1, kh, kw] : [outC, cin, kh, kw], oihw));
    const inputs = [ctx.toNchw(ctx.input(xRef)), wName];
    const fused = attrStrings(n, 'fused_ops');
    let rest = fused;
    if (fused[0] === 'BiasAdd') {
      inputs.push(ctx.input(args[0]));
      rest = fused.slice(1);
    } else if (fused[0] === 'FusedBatchNorm') {
      throw new ModelError(`${n.op} node "${n.name}" fuses FusedBatchNorm, which the TF.js importer does not map yet`);
    }
    const attrs = [ints('strides', [strides[1] ?? 1, strides[2] ?? 1]), ints('dilations', [dil[1] ?? 1, dil[2] ?? 1]), ...paddingAttrs(n)];
    if (depthwise) attrs.push(int('group', cin));
    let y = ctx.tmp(n.name, 'conv');
    ctx.add('Conv', inputs, [y], attrs, n.name);
    for (const act of rest) {
      const next = ctx.tmp(n.name, act.toLowerCase());
      activation(n, ctx, act, y, next);
      y = next;
    }
    ctx.fromNchw(y, ctx.valueName(n.name));
  };
}

function pool(onnxOp: 'MaxPool' | 'AveragePool'): OpMapper {
  return (n, ctx) => {
    requireNhwc(n);
    const k = attrInts(n, 'ksize');
    const s = attrInts(n, 'strides');
    const y = ctx.tmp(n.name, 'pool');
    ctx.add(onnxOp, [ctx.toNchw(ctx.input(ins(n)[0]))], [y], [ints('kernel_shape', [k[1], k[2]]), ints('strides', [s[1], s[2]]), ...paddingAttrs(n)], n.name);
    ctx.fromNchw(y, ctx.valueName(n.name));
  };
}

/** TF resize (align_corners / half_pixel_centers) → ONNX Resize coordinate_transformation_mode. */
function resize(mode: 'linear' | 'nearest'): OpMapper {
  return (n, ctx) => {
    const [xRef, sizeRef] = ins(n);
    const alignCorners = attrBool(n, 'align_corners', false);
    const halfPixel = attrBool(n, 'half_pixel_centers', false);
    const ctm = alignCorners ? 'align_corners' : halfPixel ? (mode === 'linear' ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric';
    const x = ctx.toNchw(ctx.input(xRef));
    // sizes = shape(x)[0:2] ++ size: Resize in opset 17 needs all four sizes.
    const shape = ctx.tmp(n.name, 'shape');
    ctx.add('Shape', [x], [shape], [int('end', 2)]);
    const hw = ctx.tmp(n.name, 'hw');
    ctx.add('Cast', [ctx.input(sizeRef)], [hw], [int('to', DataType.INT64)]);
    const sizes = ctx.tmp(n.name, 'sizes');
    ctx.add('Concat', [shape, hw], [sizes], [int('axis', 0)]);
    const attrs = [str('mode', mode), str('coordinate_transformation_mode', ctm)];
    // TF's nearest rounds down with asymmetric coordinates, and rounds half away with align_corners.
    if (mode === 'nearest') attrs.push(str('nearest_mode', alignCorners ? 'round_prefer_ceil' : 'floor'));
    const y = ctx.tmp(n.name, 'resize');
    ctx.add('Resize', [x, '', '', sizes], [y], attrs, n.name);
    ctx.fromNchw(y, ctx.valueName(n.name));
  };
}

function reduce(onnxOp: string): OpMapper {
  return (n, ctx) => {
    const [xRef] = ins(n);
    const axes = ctx.constInts(n, 1, 'reduction axes');
    const keep = attrBool(n, 'keep_dims', false) ? 1 : 0;
    if (onnxOp === 'ReduceSum') ctx.add(onnxOp, [ctx.input(xRef), ctx.int64(n.name, 'axes', axes)], [ctx.valueName(n.name)], [int('keepdims', keep)], n.name);
    else ctx.add(onnxOp, [ctx.input(xRef)], [ctx.valueName(n.name)], [ints('axes', axes), int('keepdims', keep)], n.name);
  };
}

const isIntType = (n: TfNode): boolean => ['DT_INT32', 'DT_INT64', 'DT_INT8', 'DT_UINT8', 'DT_INT16'].includes(attrType(n, 'T') ?? '');

/** TF FloorMod: result has the divisor's sign. ONNX Mod with fmod=0 is defined the same way for integers. */
function floorMod(n: TfNode, ctx: ConvertContext, a: string, b: string, out: string): void {
  if (isIntType(n)) {
    ctx.add('Mod', [a, b], [out], [int('fmod', 0)], n.name);
    return;
  }
  const q = ctx.tmp(n.name, 'q'); const f = ctx.tmp(n.name, 'floor'); const m = ctx.tmp(n.name, 'm');
  ctx.add('Div', [a, b], [q]); ctx.add('Floor', [q], [f]); ctx.add('Mul', [f, b], [m]);
  ctx.add('Sub', [a, m], [out], [], n.name);
}

const floorDiv: OpMapper = (n, ctx) => {
  const [a, b] = ins(n).map((i) => ctx.input(i));
  const out = ctx.valueName(n.name);
  if (!isIntType(n)) {
    const q = ctx.tmp(n.name, 'q');
    ctx.add('Div', [a, b], [q]);
    ctx.add('Floor', [q], [out], [], n.name);
    return;
  }
  // ONNX integer Div truncates toward zero; floor(a/b) = (a - floormod(a, b)) / b exactly.
  const m = ctx.tmp(n.name, 'mod'); const d = ctx.tmp(n.name, 'diff');
  ctx.add('Mod', [a, b], [m], [int('fmod', 0)]);
  ctx.add('Sub', [a, m], [d]);
  ctx.add('Div', [d, b], [out], [], n.name);
};

/** TF StridedSlice with masks → ONNX Slice (+ Squeeze for shrink_axis_mask). */
const stridedSlice: OpMapper = (n, ctx) => {
  const [xRef] = ins(n);
  const begin = ctx.constInts(n, 1, 'begin');
  const end = ctx.constInts(n, 2, 'end');
  const strides = ctx.constInts(n, 3, 'strides');
  const bm = attrInt(n, 'begin_mask', 0); const em = attrInt(n, 'end_mask', 0);
  const shrink = attrInt(n, 'shrink_axis_mask', 0);
  if (attrInt(n, 'ellipsis_mask', 0) !== 0 || attrInt(n, 'new_axis_mask', 0) !== 0) {
    throw new ModelError(`StridedSlice node "${n.name}" uses ellipsis_mask or new_axis_mask, which the TF.js importer does not map`);
  }
  const MAX = 2n ** 63n - 1n; const MIN = -(2n ** 63n);
  const starts: bigint[] = []; const ends: bigint[] = []; const axes: number[] = []; const steps: number[] = []; const squeeze: number[] = [];
  for (let i = 0; i < begin.length; i++) {
    const step = strides[i] ?? 1;
    const shrinkHere = (shrink >> i) & 1;
    const s = (bm >> i) & 1 && !shrinkHere ? (step > 0 ? 0n : MAX) : BigInt(begin[i]);
    let e: bigint;
    if (shrinkHere) e = begin[i] === -1 ? MAX : BigInt(begin[i] + 1);
    else e = (em >> i) & 1 ? (step > 0 ? MAX : MIN) : BigInt(end[i]);
    if (shrinkHere) squeeze.push(i);
    if (!shrinkHere && (bm >> i) & 1 && (em >> i) & 1 && step === 1) continue; // whole axis
    starts.push(s); ends.push(e); axes.push(i); steps.push(step);
  }
  const x = ctx.input(xRef);
  const out = ctx.valueName(n.name);
  let y = x;
  if (axes.length) {
    y = squeeze.length ? ctx.tmp(n.name, 'slice') : out;
    ctx.add('Slice', [x, ctx.int64(n.name, 'starts', starts), ctx.int64(n.name, 'ends', ends), ctx.int64(n.name, 'axes', axes), ctx.int64(n.name, 'steps', steps)], [y], [], n.name);
  }
  if (squeeze.length) ctx.add('Squeeze', [y, ctx.int64(n.name, 'squeeze_axes', squeeze)], [out], [], `${n.name}/squeeze`);
  else if (!axes.length) ctx.add('Identity', [x], [out], [], n.name);
};

export const OP_MAPPERS: Record<string, OpMapper> = {
  Identity: direct('Identity'),
  Add: direct('Add'), AddV2: direct('Add'), BiasAdd: direct('Add'),
  Sub: direct('Sub'), Mul: direct('Mul'), RealDiv: direct('Div'), Div: direct('Div'),
  Maximum: direct('Max'), Minimum: direct('Min'), Pow: direct('Pow'),
  Relu: direct('Relu'), Sigmoid: direct('Sigmoid'), Tanh: direct('Tanh'), Elu: direct('Elu'),
  Exp: direct('Exp'), Log: direct('Log'), Sqrt: direct('Sqrt'), Neg: direct('Neg'), Abs: direct('Abs'),
  Floor: direct('Floor'), Ceil: direct('Ceil'), Round: direct('Round'), Reciprocal: direct('Reciprocal'),
  Equal: direct('Equal'), Greater: direct('Greater'), Less: direct('Less'), GreaterEqual: direct('GreaterOrEqual'), LessEqual: direct('LessOrEqual'),
  LogicalAnd: direct('And'), LogicalOr: direct('Or'), LogicalNot: direct('Not'), Select: direct('Where'), SelectV2: direct('Where'),
  Rsqrt: (n, ctx) => { const s = ctx.tmp(n.name, 'sqrt'); ctx.add('Sqrt', [ctx.input(ins(n)[0])], [s]); ctx.add('Reciprocal', [s], [ctx.valueName(n.name)], [], n.name); },
  Square: (n, ctx) => { const x = ctx.input(ins(n)[0]); ctx.add('Mul', [x, x], [ctx.valueName(n.name)], [], n.name); },
  Relu6: (n, ctx) => ctx.add('Clip', [ctx.input(ins(n)[0]), ctx.float(n.name, 'zero', [0], []), ctx.float(n.name, 'six', [6], [])], [ctx.valueName(n.name)], [], n.name),
  LeakyRelu: (n, ctx) => ctx.add('LeakyRelu', [ctx.input(ins(n)[0])], [ctx.valueName(n.name)], [{ name: 'alpha', type: 'float', value: attrFloat(n, 'alpha', 0.2) }], n.name),
  Softmax: (n, ctx) => ctx.add('Softmax', [ctx.input(ins(n)[0])], [ctx.valueName(n.name)], [int('axis', -1)], n.name),
  Conv2D: conv(false), _FusedConv2D: conv(false),
  DepthwiseConv2dNative: conv(true), FusedDepthwiseConv2dNative: conv(true),
  MaxPool: pool('MaxPool'), AvgPool: pool('AveragePool'),
  ResizeBilinear: resize('linear'), ResizeNearestNeighbor: resize('nearest'),
  Mean: reduce('ReduceMean'), Sum: reduce('ReduceSum'), Max: reduce('ReduceMax'), Min: reduce('ReduceMin'), Prod: reduce('ReduceProd'),
  FloorDiv: floorDiv,
  FloorMod: (n, ctx) => { const [a, b] = ins(n).map((i) => ctx.input(i)); floorMod(n, ctx, a, b, ctx.valueName(n.name)); },
  Cast: (n, ctx) => ctx.add('Cast', [ctx.input(ins(n)[0])], [ctx.valueName(n.name)], [int('to', onnxTypeOf(attrType(n, 'DstT')))], n.name),
  ConcatV2: (n, ctx) => {
    const all = ins(n);
    const [axis] = ctx.constInts(n, all.length - 1, 'axis');
    ctx.add('Concat', all.slice(0, -1).map((i) => ctx.input(i)), [ctx.valueName(n.name)], [int('axis', axis)], n.name);
  },
  Reshape: (n, ctx) => {
    const [xRef, sRef] = ins(n);
    const c = ctx.constant(sRef);
    let shape: string;
    if (c && c.dtype === 'int32') shape = ctx.int64(n.name, 'shape', Array.from(c.values));
    else { shape = ctx.tmp(n.name, 'shape64'); ctx.add('Cast', [ctx.input(sRef)], [shape], [int('to', DataType.INT64)]); }
    ctx.add('Reshape', [ctx.input(xRef), shape], [ctx.valueName(n.name)], [], n.name);
  },
  Transpose: (n, ctx) => ctx.add('Transpose', [ctx.input(ins(n)[0])], [ctx.valueName(n.name)], [ints('perm', ctx.constInts(n, 1, 'permutation'))], n.name),
  ExpandDims: (n, ctx) => ctx.add('Unsqueeze', [ctx.input(ins(n)[0]), ctx.int64(n.name, 'axes', ctx.constInts(n, 1, 'dim'))], [ctx.valueName(n.name)], [], n.name),
  Squeeze: (n, ctx) => {
    const dims = attrInts(n, 'squeeze_dims');
    const inputs = [ctx.input(ins(n)[0])];
    if (dims.length) inputs.push(ctx.int64(n.name, 'axes', dims));
    ctx.add('Squeeze', inputs, [ctx.valueName(n.name)], [], n.name);
  },
  Pad: (n, ctx) => padMapper(n, ctx), PadV2: (n, ctx) => padMapper(n, ctx),
  StridedSlice: stridedSlice,
  TopKV2: (n, ctx) => {
    const [xRef] = ins(n);
    const [k] = ctx.constInts(n, 1, 'k');
    const idx64 = ctx.tmp(n.name, 'indices64');
    ctx.add('TopK', [ctx.input(xRef), ctx.int64(n.name, 'k', [k])], [ctx.valueName(n.name, 0), idx64], [int('axis', -1), int('largest', 1), int('sorted', 1)], n.name);
    // TF's TopKV2 indices are int32; ONNX TopK's are int64.
    ctx.add('Cast', [idx64], [ctx.valueName(n.name, 1)], [int('to', DataType.INT32)]);
  },
  GatherV2: (n, ctx) => {
    const [pRef, iRef] = ins(n);
    const [axis] = ctx.constInts(n, 2, 'axis');
    if (attrInt(n, 'batch_dims', 0) !== 0) throw new ModelError(`GatherV2 node "${n.name}" uses batch_dims, which the TF.js importer does not map`);
    ctx.add('Gather', [ctx.input(pRef), ctx.input(iRef)], [ctx.valueName(n.name)], [int('axis', axis)], n.name);
  },
  Shape: (n, ctx) => {
    const s = ctx.tmp(n.name, 'shape64');
    ctx.add('Shape', [ctx.input(ins(n)[0])], [s]);
    ctx.add('Cast', [s], [ctx.valueName(n.name)], [int('to', onnxTypeOf(attrType(n, 'out_type') ?? 'DT_INT32'))], n.name);
  },
};

function padMapper(n: TfNode, ctx: ConvertContext): void {
  const [xRef, , vRef] = ins(n);
  const p = ctx.constInts(n, 1, 'paddings'); // [rank, 2] pairs (before, after)
  const rank = p.length / 2;
  const pads = [...Array.from({ length: rank }, (_, i) => p[2 * i]), ...Array.from({ length: rank }, (_, i) => p[2 * i + 1])];
  const inputs = [ctx.input(xRef), ctx.int64(n.name, 'pads', pads)];
  if (vRef) inputs.push(ctx.input(vRef));
  ctx.add('Pad', inputs, [ctx.valueName(n.name)], [str('mode', 'constant')], n.name);
}
