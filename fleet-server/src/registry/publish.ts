/**
 * Publishing a model directory into the registry: DIR holds one artifact (`model.onnx`, or
 * `model.tflite` / `model.mlmodel` for those targets) and its metadata (`model.meta.json`). The
 * manifest takes preprocess/decoder/labels from the metadata and the tensor names and shapes from the
 * artifact itself, is signed with the server key and recorded.
 * An INT8 artifact must carry a passing accuracy-gate decision (`gate.json`, written by
 * `fleetctl model publish --model ... --out DIR`, which runs fleet-server/src/quantize/gate.ts) that
 * names the artifact's sha256 and size: a decision vouches only for the file it judged.
 * Every check of the artifact runs on the registry's staged copy, the bytes that are then signed and
 * served: a build written into DIR meanwhile is neither signed under this gate nor left unchecked.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import ort from 'onnxruntime-node';
import { decodeModel } from '../convert/onnx/codec.js';
import { isQuantizedModel } from '../convert/onnx/model.js';
import { modelMetadataValidator, type PreprocessSpec } from '../../../agent/src/model/metadata.js';
import { modelInputSize } from '../../../agent/src/preprocess/tensor.js';
import { decoderOutputNames } from '../../../agent/src/decode/spec.js';
import { artifactFileName, MODEL_TARGETS, type Manifest, type ModelTarget } from '../../../agent/src/protocol/manifest.js';
import { TfliteAdapter } from '../../../platform-adapters/tflite/adapter.js';
import { decodeMlModel, isQuantizedMlModel } from '../export/coreml/proto.js';
import { isQuantizedTflite } from '../export/tflite/inspect.js';
import { RegistryError, sha256File, type ArtifactRecord, type ModelRegistry } from './model-registry.js';

export interface PublishDirOptions {
  dir: string;
  version?: string;
  target?: ModelTarget;
  precision?: Manifest['precision'];
  metrics?: Manifest['metrics'];
}

const PRECISIONS: readonly string[] = ['fp32', 'fp16', 'int8'] satisfies Manifest['precision'][];

const ELEM_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 10: 'float16' };

type ManifestTensor = Manifest['inputs'][number];

/** `DIR/gate.json`: the precision the artifact was published as, the file it describes and the gate's decision (null for FP16/FP32). */
export interface GateFile {
  precision?: string;
  artifact?: { file?: string; sha256?: string; size?: number };
  decision?: { pass?: boolean; reason?: string; mapDrop?: number; f1Drop?: number } | null;
}

/** A JSON file of the model directory; one that is empty or cut short is named, with how to write it again. */
function readJsonFile(path: string, code: 'E_INPUT' | 'E_GATE', fix: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const what = text.trim() === '' ? 'is empty' : `is not valid JSON (${(err as Error).message})`;
    throw new RegistryError(code, `${path} ${what}; ${fix}.`);
  }
}

/** Why `gate` does not describe the file at `file` (named `modelPath` in messages), or undefined when it does. */
async function gateMismatch(gate: GateFile, gatePath: string, file: string, modelPath: string): Promise<string | undefined> {
  const sha256 = await sha256File(file), size = statSync(file).size;
  const a = gate.artifact;
  if (!a?.sha256 || a.size === undefined) return `${gatePath} names no artifact checksum (written by an older fleetctl), so it cannot vouch for ${modelPath}`;
  if (a.sha256 === sha256 && a.size === size) return undefined;
  return `${gatePath} was written for another file (sha256 ${a.sha256.slice(0, 12)}…, ${a.size} bytes) than ${modelPath} (sha256 ${sha256.slice(0, 12)}…, ${size} bytes)`;
}

/** The refusal for an INT8 file labelled FP16/FP32: that label would skip the accuracy gate. */
function int8Mislabelled(modelPath: string, precision: string): RegistryError {
  const instead = /\.mlmodel$/i.test(modelPath)
    ? 'the accuracy gate cannot run Core ML here, so publish the Core ML FP16/FP32 artifact'
    : `publish it as int8 through the accuracy gate (fleetctl model publish --model ${modelPath} --precision int8 --reference FP32.onnx --data DIR --out DIR), or publish the FP16/FP32 artifact`;
  return new RegistryError('E_GATE', `${modelPath} is an INT8 model (quantized weights) but was given as ${precision}; ${instead}.`);
}

/**
 * Whether the artifact holds INT8 weights or activations: ONNX quantization ops or mark, TFLite INT8
 * tensors, Core ML 8-bit linear weights. Undefined when the file does not decode (later checks refuse it).
 */
function isQuantizedArtifact(modelPath: string): boolean | undefined {
  try {
    const bytes = readFileSync(modelPath);
    if (/\.tflite$/i.test(modelPath)) return isQuantizedTflite(bytes);
    if (/\.mlmodel$/i.test(modelPath)) return isQuantizedMlModel(decodeMlModel(bytes));
    return isQuantizedModel(decodeModel(bytes));
  } catch {
    return undefined;
  }
}

/** Throws E_GATE when a file given as FP16/FP32 is quantized. */
export function assertPrecisionMatches(modelPath: string, precision: string): void {
  if (precision !== 'int8' && isQuantizedArtifact(modelPath)) throw int8Mislabelled(modelPath, precision);
}

/**
 * Why the model input's static dims cannot take the tensors the agent makes from the metadata's
 * preprocess (agent/src/preprocess/tensor.ts: [1, 3, H, W] for NCHW, [1, H, W, 3] for NHWC; Core ML
 * describes its image input as [3, H, W]), or undefined when they can. Symbolic dims take any size.
 */
function inputDimsMismatch(target: ModelTarget, dims: readonly (number | string | null)[] | undefined, pre: PreprocessSpec): string | undefined {
  if (!dims) return undefined;
  const { width, height } = modelInputSize(pre);
  const expected = target === 'coreml' && dims.length === 3 ? [3, height, width] : pre.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const shown = `[${expected.join(', ')}]`;
  if (dims.length !== expected.length) return `has ${dims.length} dims where the agent feeds ${shown}`;
  const fixed = (d: number | string | null): d is number => typeof d === 'number' && d > 0;
  const hw = target === 'coreml' && dims.length === 3 ? [1, 2] : pre.layout === 'NCHW' ? [2, 3] : [1, 2];
  if (pre.maxUpscale !== undefined && hw.some((i) => fixed(dims[i]))) {
    return `is [${dims.map((d) => d ?? '?').join(', ')}], with a fixed height or width, where preprocess.maxUpscale feeds each frame at its own size up to ${shown} (leave maxUpscale out for a fixed-size input)`;
  }
  return dims.every((d, i) => !fixed(d) || d === expected[i]) ? undefined : `is [${dims.map((d) => d ?? '?').join(', ')}] where the agent feeds ${shown}`;
}

/** A file onnxruntime cannot load (an unknown op, a broken graph) is refused here, not on 500 devices. */
async function assertOnnxLoads(file: string, modelPath: string): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  } catch (err) {
    throw new RegistryError('E_INPUT', `${modelPath} does not load in onnxruntime, so no device could run it: ${(err as Error).message.trim()}`);
  }
  await session.release();
}

/**
 * Input and output tensors of the artifact, read from the file itself: the ONNX graph (once
 * onnxruntime has loaded it), the TFLite flatbuffer as LiteRT.js loads it (a file it cannot load is
 * refused here, not on 500 devices), or the Core ML description (CHW shapes). Reads `file`, names
 * `modelPath` in refusals.
 */
async function artifactTensors(target: ModelTarget, file: string, modelPath: string): Promise<{ inputs: ManifestTensor[]; outputs: ManifestTensor[]; quantized?: boolean }> {
  if (target === 'tflite') {
    let session;
    try {
      session = await new TfliteAdapter().createSession({ modelPath: file, warmUp: false });
    } catch (err) {
      throw new RegistryError('E_INPUT', `${modelPath} does not load in LiteRT.js: ${(err as Error).message}`);
    }
    const info = session.info;
    await session.dispose();
    const t = (list: typeof info.inputs) => list.map((v) => ({ name: v.name, dims: v.dims, ...(v.type !== 'unknown' ? { type: v.type } : {}) }));
    return { inputs: t(info.inputs), outputs: t(info.outputs), quantized: isQuantizedArtifact(file) };
  }
  if (target === 'coreml') {
    const m = decodeMlModel(readFileSync(file));
    const t = (list: typeof m.inputs) => list.map((f) => ({ name: f.name, dims: f.shape, type: 'float32' }));
    return { inputs: t(m.inputs), outputs: t(m.outputs), quantized: isQuantizedMlModel(m) };
  }
  await assertOnnxLoads(file, modelPath);
  const model = decodeModel(readFileSync(file));
  const graph = model.graph;
  const initializers = new Set(graph.initializers.keys());
  const tensors = (list: typeof graph.inputs) => list.filter((v) => !initializers.has(v.name)).map((v) => ({
    name: v.name, ...(v.shape ? { dims: v.shape } : {}), ...(ELEM_TYPES[v.elemType] ? { type: ELEM_TYPES[v.elemType] } : {}),
  }));
  return { inputs: tensors(graph.inputs), outputs: tensors(graph.outputs), quantized: isQuantizedModel(model) };
}

export async function publishModelDir(registry: ModelRegistry, key: KeyObject, o: PublishDirOptions): Promise<{ record: ArtifactRecord; created: boolean }> {
  const target = o.target ?? 'onnx-cpu';
  if (!MODEL_TARGETS.includes(target)) throw new RegistryError('E_INPUT', `Expected a target of ${MODEL_TARGETS.join(', ')} but received ${target}`);
  const modelPath = join(o.dir, artifactFileName(target));
  const metaPath = join(o.dir, 'model.meta.json');
  if (!existsSync(modelPath) || !existsSync(metaPath)) {
    const how = target === 'tflite' || target === 'coreml'
      ? `export it with fleetctl model export --target ${target} -o ${modelPath}, which writes both`
      : 'import the model with fleetctl model import, which writes both';
    throw new RegistryError('E_INPUT', `Expected ${modelPath} and ${metaPath} in the model directory for target ${target}; ${how}.`);
  }
  const m = modelMetadataValidator.check(readJsonFile(metaPath, 'E_INPUT', `write it again (fleetctl model import, or fleetctl model export for tflite/coreml, writes it beside the model), or copy the model's own model.meta.json`));
  if (!m.ok) throw new RegistryError('E_INPUT', `${metaPath}: ${m.issues[0]?.path} expected ${m.issues[0]?.expected} but received ${m.issues[0]?.received}`);
  const meta = m.value;
  const gatePath = join(o.dir, 'gate.json');
  let gate = existsSync(gatePath)
    ? readJsonFile(gatePath, 'E_GATE', `run the gate again: fleetctl model publish --model FILE --precision int8|fp16|fp32 [--reference FP32.onnx --data DIR] --out ${o.dir}`) as GateFile
    : undefined;
  // Precision does not depend on the file: o.precision, else the gate's (a gate for another file
  // with no o.precision is refused below), so a wrong one is refused before anything is copied.
  const precision = o.precision ?? (gate?.precision as Manifest['precision'] | undefined) ?? 'fp32';
  if (!PRECISIONS.includes(precision)) throw new RegistryError('E_INPUT', `Expected a precision of ${PRECISIONS.join(', ')} but received ${JSON.stringify(precision)}`);
  // Every check below reads the registry's staged copy, which is then signed and renamed into place:
  // checking DIR/model.onnx and copying it afterwards signed whatever build was written into DIR
  // during the (slow) onnxruntime load, under this build's gate decision.
  return registry.addArtifact({ file: modelPath, manifest: async (staged) => {
    // A gate decision is about one file: another build copied or exported into DIR afterwards must not
    // ship under it (or carry its mapDrop). Ignored only where it is not used: --precision fp16/fp32.
    const mismatch = gate && await gateMismatch(gate, gatePath, staged, modelPath);
    if (mismatch) {
      if (o.precision === undefined || o.precision === 'int8') {
        throw new RegistryError('E_GATE', `${mismatch}; run the gate again on this file: fleetctl model publish --model FILE --precision int8 --reference FP32.onnx --data DIR --out ${o.dir} (or --precision fp16|fp32 for a float artifact, which writes its own gate.json).`);
      }
      gate = undefined;
    }
    const { inputs, outputs, quantized } = await artifactTensors(target, staged, modelPath);
    if (quantized && precision !== 'int8') throw int8Mislabelled(modelPath, precision);
    if (precision === 'int8' && gate?.decision?.pass !== true) {
      throw new RegistryError('E_GATE', `An int8 artifact needs a passing accuracy gate in ${gatePath}; run fleetctl model publish --model M.onnx --precision int8 --reference FP32.onnx --data DIR --out ${o.dir} first, or publish the FP16/FP32 artifact.`);
    }
    // The decoder in the metadata must read outputs this file has, or every device would fail on it.
    const absent = decoderOutputNames(meta.decoder).filter((n) => !outputs.some((o) => o.name === n));
    if (absent.length) {
      throw new RegistryError('E_INPUT', `${metaPath} names a ${meta.decoder.type} decoder that reads ${absent.join(', ')}, which ${modelPath} does not output (it has ${outputs.map((o) => o.name).join(', ')}); write the export into its own directory with fleetctl model export, which sets the decoder the artifact needs.`);
    }
    // The input the metadata names must be one of this file's: the agent's detector refuses such a
    // model at load (agent/src/infer/detector.ts), so it would fail on every device it reached.
    if (meta.input !== undefined && !inputs.some((i) => i.name === meta.input)) {
      const has = inputs.map((i) => `${i.name}${i.dims ? ` [${i.dims.map((d) => d ?? '?').join(', ')}]` : ''}`).join(', ') || 'none';
      throw new RegistryError('E_INPUT', `${metaPath} names the input "${meta.input}", which ${modelPath} does not have (its inputs: ${has}); set "input" in the metadata to one of them (or leave it out for the first), or publish the model that metadata was written for.`);
    }
    // The metadata's named input first: the agent loads the first manifest input as the model input.
    inputs.sort((a, b) => (a.name === meta.input ? -1 : b.name === meta.input ? 1 : 0));
    const dimsWrong = inputs[0] && inputDimsMismatch(target, inputs[0].dims, meta.preprocess);
    if (dimsWrong) {
      const p = meta.preprocess;
      throw new RegistryError('E_INPUT', `The input ${inputs[0].name} of ${modelPath} ${dimsWrong} from the preprocess in ${metaPath} (${p.width}×${p.height}${p.multipleOf ? ` rounded up to a multiple of ${p.multipleOf}` : ''}, ${p.layout}); every device would refuse its frames. Correct the metadata's preprocess to the model's input, or export the model at that size.`);
    }
    const metrics: Manifest['metrics'] = { ...o.metrics };
    if (gate?.decision?.mapDrop !== undefined) metrics.mapDrop = gate.decision.mapDrop;
    if (gate?.decision?.f1Drop !== undefined) metrics.f1Drop = gate.decision.f1Drop;
    return {
      name: meta.name, version: o.version ?? meta.version, target, precision, inputs, outputs,
      preprocess: meta.preprocess as Record<string, unknown>, decoder: meta.decoder as Record<string, unknown>, labels: meta.labels, metrics,
    };
  } }, key);
}
