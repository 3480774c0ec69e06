/** TflModel (FP32, fused activations) → Core ML layers in CHW. Graph outputs that a RESHAPE produces are taken before it (see docs/ios-bridge.md). */
import { ModelError } from '../../../../agent/src/util/errors.js';
import { F, Op, Padding, TensorType, opName } from '../tflite/schema.js';
import type { TflModel, TflOperator } from '../tflite/model.js';
import { transposeConst } from '../tflite/consts.js';
import type { CmlLayer, CmlModel, CmlPrecision } from './layers.js';

const chw = (nhwc: number[]): number[] => (nhwc.length === 4 ? [nhwc[3], nhwc[1], nhwc[2]] : nhwc);

export function tfliteToCoreml(m: TflModel, precision: CmlPrecision): CmlModel {
  const T = m.tensors;
  const name = (i: number): string => T[i].name;
  const floats = (i: number): Float32Array => new Float32Array(T[i].data!.slice().buffer);
  const field = (op: TflOperator, id: number, dflt: number): number => (op.options?.fields.find((f) => f.id === id)?.value as number | undefined) ?? dflt;
  const layers: CmlLayer[] = [];
  const outputs: CmlModel['outputs'] = [];
  const metadata: Record<string, string> = {};
  const finalReshape = new Map<number, number>();
  for (const op of m.operators) if (op.code === Op.RESHAPE && m.outputs.includes(op.outputs[0])) finalReshape.set(op.outputs[0], op.inputs[0]);
  // TFLite ActivationFunctionType: NONE 0, RELU 1, RELU6 3.
  const act = (op: TflOperator, id: number, out: string): string => {
    const fn = op.options?.fields.find((f) => f.id === id)?.value ?? 0;
    if (fn === 0) return out;
    if (fn === 1) layers.push({ kind: 'activation', name: `${out}/relu`, input: `${out}/pre`, output: out, fn: 'relu' });
    else if (fn === 3) layers.push({ kind: 'clip', name: `${out}/relu6`, input: `${out}/pre`, output: out, min: 0, max: 6 });
    else throw new ModelError(`Core ML export: fused activation ${String(fn)} is not supported (RELU and RELU6 are)`);
    return `${out}/pre`;
  };
  /** A constant operand that is one number (TFLite scalars and [1]/[1,1,1,1] tensors). */
  const scalar = (i: number): number | undefined => (T[i].data && T[i].shape.reduce((a, b) => a * b, 1) === 1 ? floats(i)[0] : undefined);
  const size = (i: number): number => T[i].shape.reduce((a, b) => a * b, 1);
  /** Emits a layer whose fused activation (options field `id`) follows it. */
  const withAct = (op: TflOperator, id: number, pending: CmlLayer, out: string): void => {
    const pre = act(op, id, out);
    pending.output = pre;
    layers.splice(pre === out ? layers.length : layers.length - 1, 0, pending);
  };
  /** The op by its builtin name and the ONNX node it came from (or its output). */
  const where = (op: TflOperator): string => `${opName(op.code)} (ONNX node ${op.onnxNode ?? name(op.outputs[0])})`;
  for (const op of m.operators) {
    const out = name(op.outputs[0]);
    switch (op.code) {
      case Op.CONV_2D: case Op.DEPTHWISE_CONV_2D: {
        const dw = op.code === Op.DEPTHWISE_CONV_2D;
        const ids = dw ? F.DepthwiseConv2DOptions : F.Conv2DOptions;
        // The conv layers written here carry no dilationFactor (proto.ts), and the reference evaluator
        // reads the same layers back, so a dilated conv would export wrong without any check noticing.
        const dil = [field(op, ids.dilation_h_factor, 1), field(op, ids.dilation_w_factor, 1)];
        if (dil.some((d) => d !== 1)) throw new ModelError(`Core ML export: ${dw ? 'DEPTHWISE_CONV_2D' : 'CONV_2D'} ${out} has dilation [${dil.join(', ')}], which this exporter does not write (only 1)`);
        const wt = T[op.inputs[1]];
        // Core ML conv weights are [outC, kernelC, kH, kW]; TFLite has OHWI (conv) or 1HWO (depthwise).
        const c = { dims: wt.shape, values: Float64Array.from(floats(op.inputs[1])), isFloat: true };
        const w = transposeConst(c, dw ? [3, 0, 1, 2] : [0, 3, 1, 2]);
        const outC = w.dims[0];
        withAct(op, ids.fused_activation_function, {
          kind: 'conv', name: out, input: name(op.inputs[0]), output: out, outC, kernelC: w.dims[1], groups: dw ? outC : 1,
          kernel: [w.dims[2], w.dims[3]], stride: [field(op, ids.stride_h, 1), field(op, ids.stride_w, 1)], same: field(op, ids.padding, 0) === Padding.SAME,
          weights: { values: Float32Array.from(w.values), channels: outC }, bias: { values: floats(op.inputs[2]), channels: outC },
        }, out);
        break;
      }
      case Op.ADD: case Op.MUL: {
        const kind = op.code === Op.ADD ? 'add' : 'multiply';
        const consts = op.inputs.filter((i) => T[i].data);
        let pending: CmlLayer;
        if (consts.length === 1 && scalar(consts[0]) !== undefined) {
          const x = op.inputs.find((i) => !T[i].data)!;
          pending = { kind, name: out, inputs: [name(x)], output: out, alpha: scalar(consts[0]) };
        } else if (consts.length === 0) {
          // Core ML's output takes the first input's shape: the full map goes first, a [C,1,1] one after.
          const ins = [...op.inputs].sort((a, b) => size(b) - size(a));
          if (kind === 'add' && size(ins[0]) !== size(ins[1])) throw new ModelError(`Core ML export: ADD ${out} broadcasts, which the Add layer does not`);
          pending = { kind, name: out, inputs: ins.map(name), output: out };
        } else {
          throw new ModelError(`Core ML export: ${kind.toUpperCase()} ${out} has a constant operand that is not a single number`);
        }
        withAct(op, 0, pending, out);
        break;
      }
      case Op.MEAN: {
        const axes = Array.from(new Int32Array(T[op.inputs[1]].data!.slice().buffer)).sort();
        const keep = field(op, F.ReducerOptions.keep_dims, 0) === 1;
        if (axes.join() !== '1,2' || !keep) throw new ModelError(`Core ML export: MEAN ${out} must average over height and width keeping them (axes [1, 2], keep_dims); it has axes [${axes.join(', ')}]`);
        layers.push({ kind: 'avgpool-global', name: out, input: name(op.inputs[0]), output: out });
        break;
      }
      case Op.RESIZE_BILINEAR: {
        const [, h, w] = T[op.inputs[0]].shape;
        const [, oh, ow] = T[op.outputs[0]].shape;
        const R = F.ResizeOptions;
        // LinearUpsampleMode DEFAULT samples input i·(Xin − Xin/Xout)/(Xout − 1), which is i/k for an
        // integer factor k: TensorFlow's align_corners=false, half_pixel_centers=false.
        if (field(op, R.align_corners, 0) || field(op, R.half_pixel_centers, 0) || oh % h || ow % w) {
          throw new ModelError(`Core ML export: RESIZE_BILINEAR ${out} needs an integer factor without align_corners or half_pixel_centers`);
        }
        layers.push({ kind: 'upsample', name: out, input: name(op.inputs[0]), output: out, factor: [oh / h, ow / w] });
        break;
      }
      case Op.RELU: layers.push({ kind: 'activation', name: out, input: name(op.inputs[0]), output: out, fn: 'relu' }); break;
      case Op.LOGISTIC: layers.push({ kind: 'activation', name: out, input: name(op.inputs[0]), output: out, fn: 'sigmoid' }); break;
      case Op.MAX_POOL_2D: {
        const P = F.Pool2DOptions;
        layers.push({ kind: 'maxpool', name: out, input: name(op.inputs[0]), output: out, kernel: [field(op, P.filter_height, 1), field(op, P.filter_width, 1)],
          stride: [field(op, P.stride_h, 1), field(op, P.stride_w, 1)], same: field(op, P.padding, 0) === Padding.SAME });
        break;
      }
      case Op.CONCATENATION: {
        if (field(op, F.ConcatenationOptions.axis, 0) !== 3) throw new ModelError(`Core ML export: ${where(op)} concatenates along another axis than channels, which the Concat layer here does not`);
        const ins = op.inputs.map((i) => {
          if (!T[i].data) return name(i);
          const shape = chw(T[i].shape) as [number, number, number];
          const values = transposeConst({ dims: T[i].shape, values: Float64Array.from(floats(i)), isFloat: true }, [0, 3, 1, 2]).values;
          layers.push({ kind: 'const', name: `${name(i)}/const`, output: `${name(i)}/const`, shape, data: { values: Float32Array.from(values), channels: shape[0] } });
          return `${name(i)}/const`;
        });
        layers.push({ kind: 'concat', name: out, inputs: ins, output: out });
        break;
      }
      case Op.RESHAPE: {
        const src = finalReshape.get(op.outputs[0]);
        if (src === undefined) throw new ModelError(`Core ML export: ${where(op)} reshapes inside the graph; only a Reshape that makes a graph output is supported (its input becomes the output)`);
        outputs.push({ name: name(src), shape: chw(T[src].shape) });
        metadata[`output:${name(src)}`] = JSON.stringify({ onnxOutput: out, reshapeFromHWC: T[op.outputs[0]].shape });
        break;
      }
      default:
        throw new ModelError(`Core ML export: ${where(op)} has no Core ML layer here; the layers this exporter writes are listed in docs/ios-bridge.md`);
    }
  }
  for (const o of m.outputs) if (!finalReshape.has(o)) outputs.push({ name: name(o), shape: chw(T[o].shape) });
  const inputs = m.inputs.map((i) => {
    if (T[i].type !== TensorType.FLOAT32) throw new ModelError('Core ML export: only float32 inputs are supported');
    return { name: name(i), shape: chw(T[i].shape) };
  });
  metadata.inputLayout = 'CHW (the ONNX model takes NHWC; the bridge feeds planar RGB)';
  return { inputs, outputs, layers, precision, metadata };
}
