/**
 * The import step of the conversion pipeline: a TF.js graph model (converted here) or an ONNX model
 * (taken as is) becomes `out.onnx` plus `out.meta.json`. The written model is loaded by
 * onnxruntime-node before anything is reported as done, and the metadata is checked against it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { metadataPathFor, modelMetadataValidator, type ModelMetadata } from '../../../agent/src/model/metadata.js';
import { ModelError } from '../../../agent/src/util/errors.js';
import { decoderOutputNames } from '../../../agent/src/decode/spec.js';
import { decodeModel, encodeModel } from './onnx/codec.js';
import { fillOutputShapes } from './onnx/output-shapes.js';
import { loadTfjsGraphModel } from './tfjs/reader.js';
import { convertTfjsToOnnx, TFJS_IMPORTER_VERSION, type ConvertStats } from './tfjs/convert.js';

export interface ImportOptions {
  from: 'tfjs' | 'onnx';
  inputPath: string;
  outputPath: string;
  /** Metadata (labels, preprocess, decoder) to write next to the model. */
  metadata: unknown;
}

export interface ImportResult {
  output: string;
  metadataPath: string;
  inputs: string[];
  outputs: string[];
  sizeBytes: number;
  importerVersion: string;
  stats?: ConvertStats;
}

/**
 * Where presets are looked for: the working directory's configs/models, then the install's (beside
 * the sources, fleet-server/src/convert/../../../configs, or beside the bundle, dist/../configs). Only
 * the working directory's was, so `fleetctl model import --meta coco-centernet` worked from the
 * checkout's root alone.
 */
export function presetDirs(): string[] {
  return ['configs/models', fileURLToPath(new URL('../../../configs/models/', import.meta.url)), fileURLToPath(new URL('../configs/models/', import.meta.url))];
}

/** `coco-centernet` → configs/models/coco-centernet.meta.json; anything else is a file path. */
export function resolveMetadataArg(arg: string, configDirs: string | string[] = presetDirs()): string {
  if (!/^[a-z0-9-]+$/.test(arg)) return arg;
  for (const dir of Array.isArray(configDirs) ? configDirs : [configDirs]) {
    const preset = join(dir, `${arg}.meta.json`);
    if (existsSync(preset)) return preset;
  }
  return arg;
}

export async function importModel(opts: ImportOptions): Promise<ImportResult> {
  const meta: ModelMetadata = modelMetadataValidator.parse(opts.metadata, 'model metadata');
  let bytes: Uint8Array;
  let stats: ConvertStats | undefined;
  if (opts.from === 'tfjs') {
    const converted = convertTfjsToOnnx(await loadTfjsGraphModel(opts.inputPath), { graphName: meta.name });
    bytes = encodeModel(await fillOutputShapes(converted.model));
    stats = converted.stats;
  } else {
    bytes = new Uint8Array(await readFile(opts.inputPath));
    decodeModel(bytes); // our reader must understand it too: later passes (quantizer) rewrite it
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelError(`onnxruntime could not load the ${opts.from === 'tfjs' ? 'imported' : 'given'} model ${opts.inputPath}: ${(err as Error).message}`, { cause: err });
  }
  const inputs = [...session.inputNames];
  const outputs = [...session.outputNames];
  await session.release();
  if (meta.input && !inputs.includes(meta.input)) {
    throw new ModelError(`Metadata names input "${meta.input}" but the model's inputs are ${inputs.map((i) => `"${i}"`).join(', ')}; fix "input" in the metadata`);
  }
  const absent = decoderOutputNames(meta.decoder).filter((o) => !outputs.includes(o));
  if (absent.length) {
    throw new ModelError(`Metadata's decoder reads output${absent.length > 1 ? 's' : ''} ${absent.map((o) => `"${o}"`).join(', ')} but the model's outputs are ${outputs.map((o) => `"${o}"`).join(', ')}`);
  }
  await mkdir(dirname(opts.outputPath), { recursive: true });
  await writeFile(opts.outputPath, bytes);
  const metadataPath = metadataPathFor(opts.outputPath);
  await writeFile(metadataPath, `${JSON.stringify(meta, null, 2)}\n`);
  return { output: opts.outputPath, metadataPath, inputs, outputs, sizeBytes: bytes.length, importerVersion: TFJS_IMPORTER_VERSION, stats };
}
