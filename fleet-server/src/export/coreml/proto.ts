/**
 * CmlModel ⇄ `.mlmodel` bytes (protobuf). Field numbers from coremltools mlmodel/format:
 *   Model.proto: Model{specificationVersion 1, description 2, neuralNetwork 500};
 *     ModelDescription{input 1, output 10, metadata 100}; Metadata{shortDescription 1,
 *     versionString 2, userDefined 100 (map entry key 1, value 2)}
 *   FeatureTypes.proto: FeatureDescription{name 1, type 3}; FeatureType{multiArrayType 5};
 *     ArrayFeatureType{shape 1, dataType 2}; ArrayDataType FLOAT32 = 65568
 *   NeuralNetwork.proto: NeuralNetwork{layers 1}; NeuralNetworkLayer{name 1, input 2, output 3,
 *     convolution 100, pooling 120, activation 130, upsample 210, add 230, multiply 231,
 *     loadConstant 290, concat 320, clip 660};
 *     ConvolutionLayerParams{outputChannels 1, kernelChannels 2, nGroups 10, kernelSize 20, stride 30,
 *     dilationFactor 40, valid 50, same 51, hasBias 70, weights 90, bias 91};
 *     PoolingLayerParams{type 1 (MAX 0, AVERAGE 1), kernelSize 10, stride 20, valid 30, same 31,
 *     globalPooling 60}; AddLayerParams{alpha 1}; MultiplyLayerParams{alpha 1};
 *     ClipLayerParams{minVal 1, maxVal 2}; UpsampleLayerParams{scalingFactor 1, mode 5 (BILINEAR 1),
 *     linearUpsampleMode 6 (DEFAULT 0)};
 *     SamePadding{asymmetryMode 1 (BOTTOM_RIGHT_HEAVY 0)}; ValidPadding{paddingAmounts 1};
 *     ActivationParams{ReLU 10, sigmoid 40}; LoadConstantLayerParams{shape 1, data 2};
 *     WeightParams{floatValue 1, float16Value 2, rawValue 30, quantization 40};
 *     QuantizationParams{numberOfBits 1, linearQuantization 101}; LinearQuantizationParams{scale 1, bias 2}
 * Specification version 4 (iOS 13): 8-bit linear weights need >= 3, FP16 weights >= 2.
 */
import { ProtoReader, ProtoWriter, readFloats, readInts, toInt, toStr } from '../../convert/onnx/wire.js';
import { halfBitsToFloat, toHalfBits } from '../../quantize/fp16.js';
import { ModelError } from '../../../../agent/src/util/errors.js';
import type { CmlFeature, CmlLayer, CmlModel, CmlPrecision, CmlWeights } from './layers.js';

export const SPEC_VERSION = 4;
const FLOAT32 = 65568;

function writeWeights(w: ProtoWriter, weights: CmlWeights, precision: CmlPrecision): void {
  const v = weights.values;
  if (precision === 'fp32') { w.packedFloats(1, Array.from(v)); return; }
  if (precision === 'fp16') {
    const half = Uint16Array.from(v, (x) => toHalfBits(x));
    w.bytes(2, new Uint8Array(half.buffer));
    return;
  }
  // 8-bit linear, per output channel: w = scale * q + bias (LinearQuantizationParams).
  const per = v.length / weights.channels;
  const scale: number[] = [], bias: number[] = [];
  const q = new Uint8Array(v.length);
  for (let c = 0; c < weights.channels; c++) {
    let lo = Infinity, hi = -Infinity;
    for (let k = c * per; k < (c + 1) * per; k++) { lo = Math.min(lo, v[k]); hi = Math.max(hi, v[k]); }
    const s = hi > lo ? (hi - lo) / 255 : 1;
    scale.push(s); bias.push(lo);
    for (let k = c * per; k < (c + 1) * per; k++) q[k] = Math.round((v[k] - lo) / s);
  }
  w.bytes(30, q);
  w.message(40, (qp) => qp.int(1, 8).message(101, (l) => l.packedFloats(1, scale).packedFloats(2, bias)));
}

function writeFeature(w: ProtoWriter, f: CmlFeature): void {
  w.string(1, f.name);
  w.message(3, (t) => t.message(5, (a) => a.packedInts(1, f.shape).int(2, FLOAT32)));
}

function writeLayer(w: ProtoWriter, l: CmlLayer, precision: CmlPrecision): void {
  w.string(1, l.name);
  const ins = 'inputs' in l ? l.inputs : 'input' in l ? [l.input] : [];
  for (const i of ins) w.string(2, i);
  w.string(3, l.output);
  switch (l.kind) {
    case 'conv':
      w.message(100, (c) => {
        c.int(1, l.outC).int(2, l.kernelC).int(10, l.groups).packedInts(20, l.kernel).packedInts(30, l.stride).packedInts(40, [1, 1]);
        if (l.same) c.message(51, (s) => s.int(1, 0));
        else c.message(50, () => undefined);
        c.int(70, 1);
        c.message(90, (x) => writeWeights(x, l.weights, precision));
        // Biases stay float (FP16 in the FP16 file): they are tiny and quantizing them buys nothing.
        c.message(91, (x) => writeWeights(x, l.bias, precision === 'int8' ? 'fp32' : precision));
      });
      break;
    case 'maxpool':
      w.message(120, (p) => {
        p.int(1, 0).packedInts(10, l.kernel).packedInts(20, l.stride);
        if (l.same) p.message(31, (s) => s.int(1, 0));
        else p.message(30, () => undefined);
      });
      break;
    case 'activation': w.message(130, (a) => a.message(l.fn === 'relu' ? 10 : 40, () => undefined)); break;
    case 'avgpool-global': w.message(120, (p) => { p.int(1, 1).packedInts(10, [1, 1]).packedInts(20, [1, 1]).message(30, () => undefined).int(60, 1); }); break;
    case 'clip': w.message(660, (c) => c.float(1, l.min).float(2, l.max)); break;
    case 'upsample': w.message(210, (u) => u.packedInts(1, l.factor).int(5, 1).int(6, 0)); break;
    case 'add': w.message(230, (a) => { if (l.alpha !== undefined) a.float(1, l.alpha); }); break;
    case 'multiply': w.message(231, (a) => { if (l.alpha !== undefined) a.float(1, l.alpha); }); break;
    case 'concat': w.message(320, () => undefined); break;
    case 'const': w.message(290, (c) => c.packedInts(1, l.shape).message(2, (x) => writeWeights(x, l.data, precision === 'int8' ? 'fp32' : precision))); break;
  }
}

export function encodeMlModel(m: CmlModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, SPEC_VERSION);
  w.message(2, (d) => {
    for (const f of m.inputs) d.message(1, (x) => writeFeature(x, f));
    for (const f of m.outputs) d.message(10, (x) => writeFeature(x, f));
    d.message(100, (md) => {
      md.string(1, `Edge Fleet export (${m.precision})`).string(2, '1');
      for (const [k, v] of Object.entries(m.metadata)) md.message(100, (e) => e.string(1, k).string(2, v));
    });
  });
  w.message(500, (nn) => { for (const l of m.layers) nn.message(1, (x) => writeLayer(x, l, m.precision)); });
  return w.finish();
}

// ---- decode ------------------------------------------------------------------------------------

function fields(bytes: Uint8Array): Array<ReturnType<ProtoReader['fields']> extends Generator<infer F> ? F : never> {
  return [...new ProtoReader(bytes).fields()];
}

function readWeights(bytes: Uint8Array, channels: number): CmlWeights {
  let floats: number[] = [];
  let raw: Uint8Array | undefined;
  const scale: number[] = [], bias: number[] = [];
  for (const f of fields(bytes)) {
    if (f.field === 1) readFloats(f, floats);
    else if (f.field === 2) { const h = new Uint16Array(f.bytes.slice().buffer); floats = Array.from(h, halfBitsToFloat); }
    else if (f.field === 30) raw = f.bytes;
    else if (f.field === 40) {
      for (const q of fields(f.bytes)) {
        if (q.field === 101) for (const l of fields(q.bytes)) { if (l.field === 1) readFloats(l, scale); if (l.field === 2) readFloats(l, bias); }
      }
    }
  }
  if (raw) {
    const per = raw.length / scale.length;
    floats = Array.from(raw, (q, k) => scale[Math.floor(k / per)] * q + bias[Math.floor(k / per)]);
  }
  return { values: Float32Array.from(floats), channels, ...(raw ? { quantized: true } : {}) };
}

function readFeature(bytes: Uint8Array): CmlFeature {
  let name = '';
  const shape: number[] = [];
  for (const f of fields(bytes)) {
    if (f.field === 1) name = toStr(f.bytes);
    if (f.field === 3) for (const t of fields(f.bytes)) if (t.field === 5) for (const a of fields(t.bytes)) if (a.field === 1) readInts(a, shape);
  }
  return { name, shape };
}

function readLayer(bytes: Uint8Array): CmlLayer {
  let name = '', output = '';
  const inputs: string[] = [];
  let body: { field: number; bytes: Uint8Array } | undefined;
  for (const f of fields(bytes)) {
    if (f.field === 1) name = toStr(f.bytes);
    else if (f.field === 2) inputs.push(toStr(f.bytes));
    else if (f.field === 3) output = toStr(f.bytes);
    else if (f.field >= 100) body = f;
  }
  if (!body) throw new ModelError(`Core ML layer ${name} has no parameters`);
  const sub = fields(body.bytes);
  const ints = (n: number): number[] => { const out: number[] = []; for (const f of sub) if (f.field === n) readInts(f, out); return out; };
  const one = (n: number): number => toInt(sub.find((f) => f.field === n)?.varint ?? 0n);
  const float = (n: number): number => { const out: number[] = []; for (const f of sub) if (f.field === n) readFloats(f, out); return out[0] ?? 0; };
  switch (body.field) {
    case 100: {
      const outC = one(1);
      return { kind: 'conv', name, input: inputs[0], output, outC, kernelC: one(2), groups: one(10), kernel: ints(20) as [number, number], stride: ints(30) as [number, number],
        same: sub.some((f) => f.field === 51), weights: readWeights(sub.find((f) => f.field === 90)!.bytes, outC), bias: readWeights(sub.find((f) => f.field === 91)!.bytes, outC) };
    }
    case 120:
      if (one(60) === 1 && one(1) === 1) return { kind: 'avgpool-global', name, input: inputs[0], output };
      if (one(1) !== 0) throw new ModelError(`Core ML layer ${name}: only max pooling and global average pooling are decoded here`);
      return { kind: 'maxpool', name, input: inputs[0], output, kernel: ints(10) as [number, number], stride: ints(20) as [number, number], same: sub.some((f) => f.field === 31) };
    case 660: return { kind: 'clip', name, input: inputs[0], output, min: float(1), max: float(2) };
    case 210: return { kind: 'upsample', name, input: inputs[0], output, factor: ints(1) as [number, number] };
    case 231: return { kind: 'multiply', name, inputs, output, ...(inputs.length === 1 ? { alpha: float(1) } : {}) };
    case 130: return { kind: 'activation', name, input: inputs[0], output, fn: sub.some((f) => f.field === 10) ? 'relu' : 'sigmoid' };
    case 230: return { kind: 'add', name, inputs, output, ...(inputs.length === 1 ? { alpha: float(1) } : {}) };
    case 320: return { kind: 'concat', name, inputs, output };
    case 290: {
      const shape = ints(1) as [number, number, number];
      return { kind: 'const', name, output, shape, data: readWeights(sub.find((f) => f.field === 2)!.bytes, shape[0]) };
    }
    default: throw new ModelError(`Core ML layer ${name}: layer type field ${body.field} is not one this decoder knows`);
  }
}

export interface DecodedMlModel extends CmlModel { specificationVersion: number }

/** A model whose convolution weights are stored as 8-bit linear (an INT8 export), whatever its description says. */
export function isQuantizedMlModel(m: CmlModel): boolean {
  return m.layers.some((l) => l.kind === 'conv' && l.weights.quantized === true);
}

export function decodeMlModel(bytes: Uint8Array): DecodedMlModel {
  const m: DecodedMlModel = { specificationVersion: 0, inputs: [], outputs: [], layers: [], precision: 'fp32', metadata: {} };
  for (const f of fields(bytes)) {
    if (f.field === 1) m.specificationVersion = toInt(f.varint);
    else if (f.field === 2) {
      for (const d of fields(f.bytes)) {
        if (d.field === 1) m.inputs.push(readFeature(d.bytes));
        if (d.field === 10) m.outputs.push(readFeature(d.bytes));
        if (d.field === 100) for (const md of fields(d.bytes)) {
          if (md.field === 1) m.precision = (/\((\w+)\)/.exec(toStr(md.bytes))?.[1] ?? 'fp32') as CmlPrecision;
          if (md.field === 100) { const kv = fields(md.bytes); m.metadata[toStr(kv[0].bytes)] = toStr(kv[1]?.bytes ?? new Uint8Array()); }
        }
      }
    } else if (f.field === 500) {
      for (const l of fields(f.bytes)) if (l.field === 1) m.layers.push(readLayer(l.bytes));
    }
  }
  return m;
}
