/**
 * Reads a TF.js graph model: `model.json` (format "graph-model": a TensorFlow GraphDef in JSON plus a
 * weights manifest) and its binary weight shards. Weight layout and quantization follow the TF.js
 * converter's documented format (tfjs-converter README, "Format of the weights manifest"): shards of
 * one group are concatenated, weights lie back to back in manifest order; quantized weights store
 * uint8/uint16 values q with value = q * scale + min, or IEEE float16 values.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../../../../agent/src/util/schema.js';
import { ModelError } from '../../../../agent/src/util/errors.js';

const TfAttrValue = Type.Record(Type.String(), Type.Unknown());
const TfNode = Type.Object({
  name: Type.String({ minLength: 1 }),
  op: Type.String({ minLength: 1 }),
  input: Type.Optional(Type.Array(Type.String())),
  attr: Type.Optional(Type.Record(Type.String(), TfAttrValue)),
  device: Type.Optional(Type.String()),
});
export type TfNode = Static<typeof TfNode>;

const WeightEntry = Type.Object({
  name: Type.String(),
  shape: Type.Array(Type.Integer({ minimum: 0 })),
  dtype: Type.String(),
  quantization: Type.Optional(Type.Object({
    dtype: Type.String(),
    scale: Type.Optional(Type.Number()),
    min: Type.Optional(Type.Number()),
    original_dtype: Type.Optional(Type.String()),
  })),
});

const TensorSig = Type.Object({ name: Type.String(), dtype: Type.Optional(Type.String()), tensorShape: Type.Optional(Type.Object({ dim: Type.Optional(Type.Array(Type.Object({ size: Type.Optional(Type.String()) }))) })) });
const Signature = Type.Object({ inputs: Type.Optional(Type.Record(Type.String(), TensorSig)), outputs: Type.Optional(Type.Record(Type.String(), TensorSig)) });

const ModelJson = Type.Object({
  format: Type.Optional(Type.String()),
  modelTopology: Type.Object({ node: Type.Array(TfNode), library: Type.Optional(Type.Unknown()), versions: Type.Optional(Type.Unknown()) }),
  weightsManifest: Type.Array(Type.Object({ paths: Type.Array(Type.String()), weights: Type.Array(WeightEntry) })),
  signature: Type.Optional(Signature),
  userDefinedMetadata: Type.Optional(Type.Object({ signature: Type.Optional(Signature) })),
});
const modelJsonValidator = compileSchema(ModelJson);

export type TfDtype = 'float32' | 'int32' | 'bool';

export interface TfWeight {
  dtype: TfDtype;
  shape: number[];
  values: Float32Array | Int32Array | Uint8Array;
}

export interface TfTensorSig {
  /** Signature key, e.g. `input:0` or `tower_0/images`. */
  key: string;
  /** Node name and output index the key refers to. */
  node: string;
  index: number;
  dtype: string;
  /** -1 for unknown sizes. */
  shape?: number[];
}

export interface TfjsGraphModel {
  nodes: TfNode[];
  weights: Map<string, TfWeight>;
  inputs: TfTensorSig[];
  outputs: TfTensorSig[];
  /** Weight bytes as stored (before dequantization), for the report. */
  storedWeightBytes: number;
}

export interface ReadFileFn { (path: string): Promise<Uint8Array> }

export async function loadTfjsGraphModel(modelJsonPath: string, read: ReadFileFn = readFile): Promise<TfjsGraphModel> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(await read(modelJsonPath)));
  } catch (err) {
    throw new ModelError(`Could not read the TF.js model ${modelJsonPath}: ${(err as Error).message}; pass the path of a TF.js graph model's model.json`, { cause: err });
  }
  const json = modelJsonValidator.parse(raw, `TF.js model ${modelJsonPath}`);
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new ModelError(`Expected a TF.js graph model (format "graph-model") in ${modelJsonPath} but found format "${json.format}"; layers models must be converted to graph models with tensorflowjs_converter first`);
  }
  const weights = new Map<string, TfWeight>();
  let stored = 0;
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => read(join(dirname(modelJsonPath), p))));
    const total = shards.reduce((n, s) => n + s.length, 0);
    const buf = new Uint8Array(total);
    let off = 0;
    for (const s of shards) { buf.set(s, off); off += s.length; }
    stored += total;
    let pos = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      const storedDtype = q ? q.dtype : w.dtype;
      const width = storedDtype === 'float16' || storedDtype === 'uint16' ? 2 : storedDtype === 'uint8' || storedDtype === 'bool' ? 1 : 4;
      if (!['float32', 'int32', 'bool', 'float16', 'uint8', 'uint16'].includes(storedDtype)) {
        throw new ModelError(`Weight ${w.name} is stored as ${storedDtype}; the TF.js reader supports float32, int32, bool and float16/uint8/uint16 quantization`);
      }
      const bytes = pos + count * width <= buf.length ? buf.slice(pos, pos + count * width) : undefined;
      if (!bytes) throw new ModelError(`Weight ${w.name} needs ${count * width} bytes at offset ${pos} but the shards of ${modelJsonPath} hold ${buf.length}; the .bin files are truncated or do not belong to this model.json`);
      pos += count * width;
      weights.set(w.name, decodeWeight(w.dtype, storedDtype, bytes, count, q?.scale ?? 1, q?.min ?? 0));
      weights.get(w.name)!.shape = w.shape;
    }
  }
  const sig = json.signature ?? json.userDefinedMetadata?.signature;
  const nodes = json.modelTopology.node;
  const placeholders = nodes.filter((n) => n.op === 'Placeholder');
  const inputs = sig?.inputs ? Object.entries(sig.inputs).map(([k, v]) => toSig(k, v)) : placeholders.map((n) => ({ key: n.name, node: n.name, index: 0, dtype: 'DT_FLOAT' }));
  let outputs: TfTensorSig[];
  if (sig?.outputs) outputs = Object.entries(sig.outputs).map(([k, v]) => toSig(k, v));
  else {
    const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((i) => parseRef(i).node)));
    outputs = nodes.filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'Placeholder').map((n) => ({ key: n.name, node: n.name, index: 0, dtype: 'DT_FLOAT' }));
  }
  return { nodes, weights, inputs, outputs, storedWeightBytes: stored };
}

function toSig(key: string, v: Static<typeof TensorSig>): TfTensorSig {
  const ref = parseRef(v.name || key);
  const dims = v.tensorShape?.dim;
  return { key, node: ref.node, index: ref.index, dtype: v.dtype ?? 'DT_FLOAT', shape: dims?.map((d) => Number(d.size ?? -1)) };
}

/** `name`, `name:1` or `^name` (control dependency). */
export function parseRef(ref: string): { node: string; index: number; control: boolean } {
  if (ref.startsWith('^')) return { node: ref.slice(1), index: 0, control: true };
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1], index: Number(m[2]), control: false } : { node: ref, index: 0, control: false };
}

function decodeWeight(dtype: string, stored: string, bytes: Uint8Array, count: number, scale: number, min: number): TfWeight {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (stored === 'int32' && dtype === 'int32') return { dtype: 'int32', shape: [], values: new Int32Array(bytes.buffer, bytes.byteOffset, count) };
  if (stored === 'bool') return { dtype: 'bool', shape: [], values: bytes };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (stored) {
      case 'float32': out[i] = dv.getFloat32(i * 4, true); break;
      case 'float16': out[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
      case 'uint8': out[i] = dv.getUint8(i) * scale + min; break;
      case 'uint16': out[i] = dv.getUint16(i * 2, true) * scale + min; break;
      default: break;
    }
  }
  if (dtype === 'int32') return { dtype: 'int32', shape: [], values: Int32Array.from(out, (v) => Math.round(v)) };
  return { dtype: 'float32', shape: [], values: out };
}

/** IEEE 754 binary16 → number (sign, 5-bit exponent with bias 15, 10-bit mantissa; subnormals, inf, NaN). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
