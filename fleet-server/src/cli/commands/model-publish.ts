/**
 * `fleetctl model publish --model M.onnx --precision int8|fp16|fp32 [--reference FP32.onnx --data DIR|VIDEO] --out DIR`
 * `fleetctl model publish DIR [--version V] [--target onnx-cpu] [--config F | --data-dir D]` (registry)
 *
 * With a DIR argument, the artifact in DIR (model.onnx + model.meta.json, and gate.json for INT8)
 * becomes a signed version in the fleet server's registry (fleet-server/src/registry/publish.ts).
 *
 * Minimal publish step (the signed manifest and registry upload belong to the OTA work): an INT8
 * artifact must pass the accuracy gate against its FP32 reference first; a refused one is not
 * written and the FP16/FP32 alternatives are offered. Writes the artifact, its metadata and
 * gate.json into DIR.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, EXIT, type CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { numberOption, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT } from '../../../../agent/src/cli/args.js';
import { runGate, DEFAULT_GATE_FRAMES, DEFAULT_MAX_F1_DROP, DEFAULT_MAX_MAP_DROP, type GateDecision } from '../../quantize/gate.js';
import { dbPathOf, loadFleetConfig } from '../../config/schema.js';
import { openDatabase } from '../../db/database.js';
import { keyPathOf, loadOrCreateServerKey } from '../../keys/server-key.js';
import { ModelRegistry, sha256File } from '../../registry/model-registry.js';
import { assertPrecisionMatches, publishModelDir } from '../../registry/publish.js';
import { requireFile } from '../paths.js';
import { InputError } from '../../../../agent/src/util/errors.js';
import { metadataPathFor, modelMetadataValidator, type ModelMetadata } from '../../../../agent/src/model/metadata.js';
import { artifactFileName, type Manifest, type ModelTarget } from '../../../../agent/src/protocol/manifest.js';

const usage = `
usage: fleetctl model publish DIR [--version V] [--target onnx-cpu|onnx-trt|tflite|coreml] [--precision P]
         [--config FILE | --data-dir DIR] [--create] [--json]
       fleetctl model publish --model M.onnx --precision int8|fp16|fp32 --out DIR [--meta M.meta.json]
         [--reference FP32.onnx --data DIR|VIDEO [--frames N] [--stride K] [--offset O]]
         [--max-drop POINTS] [--max-f1-drop POINTS] [--json]

An int8 model needs --reference and --data, an fp16 one is gated when they are given (fp32 takes
neither): it is evaluated against the FP32 model and refused (exit 1, nothing written) when its mAP@0.5 drop exceeds --max-drop (default ${DEFAULT_MAX_MAP_DROP}) or the F1
of its detections at the metadata's score threshold against FP32's drops more than --max-f1-drop
(default ${DEFAULT_MAX_F1_DROP}; fleetctl model evaluate shows both); publish the FP32 artifact instead, or (for int8) the FP16 one
once it passes this gate too (--precision fp16 with --reference and --data). The gate reads the
frames fleetctl model evaluate reads with the same --frames (default ${DEFAULT_GATE_FRAMES}), --stride and --offset.
Writes DIR/model.onnx (.tflite, .mlmodel by the file's type),
its model.meta.json and DIR/gate.json: the directory the DIR form below publishes. The metadata is
the model's own (M.meta.json beside it) or --meta; a model with neither is refused, as DIR may hold
another model's. An INT8 file given as fp16/fp32 is refused.

With DIR first: adds DIR/model.onnx (model.tflite for --target tflite, model.mlmodel for coreml, as
fleetctl model export writes them) as a version to the registry in the fleet server's data dir, with
a manifest signed by the server's key (created at the server's first start). A data dir or key that
does not exist is refused (a typo would sign with a new key that no agent pins); --create makes
them, for a new fleet whose server has not started yet (agents pin that key: fleetctl key export).
Versions never change: the same bytes again are a no-op, other bytes under the same version are
refused. An int8 artifact needs DIR/gate.json with a passing decision for that very file (the --out
form above writes it with the file's sha256 and size; another file put into DIR afterwards is refused).
`;

export const command: CliCommand = {
  summary: 'publish a model artifact; INT8 (and FP16 given --reference) only after it passes the accuracy gate',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, strict: true, allowPositionals: true,
      options: {
        model: { type: 'string' }, precision: { type: 'string' }, reference: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, 'max-drop': { type: 'string' }, 'max-f1-drop': { type: 'string' }, meta: { type: 'string' }, json: { type: 'boolean' },
        frames: { type: 'string' }, stride: { type: 'string' }, offset: { type: 'string' },
        version: { type: 'string' }, target: { type: 'string' }, config: { type: 'string' }, 'data-dir': { type: 'string' }, create: { type: 'boolean' },
      },
    });
    if (positionals.length > 0) return publishToRegistry(positionals, values);
    if (!values.model || !values.out) throw new UsageError('Expected --model M.onnx and --out DIR');
    const precision = values.precision;
    if (precision !== 'int8' && precision !== 'fp16' && precision !== 'fp32') throw new UsageError(`Expected --precision int8, fp16 or fp32 but received ${JSON.stringify(precision)}`);
    // Gate options given to an artifact the gate does not judge were ignored without a word: the
    // operator believed an FP32 build had been checked. An FP16 build is gated when they are given
    // (its weights rounded to 16 bits can break a model: PP-OCRv4 det's output SNR was 0 dB).
    const gateOptions = (['reference', 'data', 'frames', 'stride', 'offset', 'max-drop', 'max-f1-drop'] as const).filter((o) => values[o] !== undefined);
    if (precision === 'fp32' && gateOptions.length > 0) {
      throw new UsageError(`${gateOptions.map((o) => `--${o}`).join(', ')} appl${gateOptions.length > 1 ? 'y' : 'ies'} to --precision int8 and fp16 only: a fp32 artifact is published without the accuracy gate; drop ${gateOptions.length > 1 ? 'them' : 'it'}, or compare it with fleetctl model evaluate --reference FP32.onnx --candidate ${values.model} --data DIR|VIDEO`);
    }
    const gated = precision === 'int8' || gateOptions.length > 0;
    requireFile('--model', values.model);
    const ext = extname(values.model).toLowerCase();
    const target = ext === '.tflite' ? 'tflite' : ext === '.mlmodel' ? 'coreml' : ext === '.onnx' ? 'onnx-cpu' : undefined;
    if (!target) throw new UsageError(`Expected --model to be a .onnx, .tflite or .mlmodel file but received ${values.model}`);
    assertPrecisionMatches(values.model, precision);
    const metaFile = values.meta ?? metadataPathFor(values.model);
    if (!values.meta && !existsSync(metaFile)) {
      throw new InputError(`${values.model} has no metadata (${metaFile}); give --meta FILE with its preprocess, decoder and labels (its FP32 model's model.meta.json, for a build of that model), or import it with fleetctl model import, which writes it`);
    }
    if (values.meta) requireFile('--meta', values.meta);
    const metaBytes = await readFile(metaFile);
    const meta = parseMetadata(metaBytes, metaFile);
    let decision: GateDecision | undefined;
    // The bytes the gate judges: the copy written to DIR must be these (a build still being written,
    // or replaced, while the gate ran would otherwise be vouched for by gate.json).
    const judged = await sha256File(values.model);
    if (gated) {
      if (!values.reference || !values.data) throw new UsageError(`${precision === 'int8' ? 'An int8 artifact needs' : 'Gating an fp16 artifact needs'} --reference FP32.onnx and --data DIR|VIDEO for the accuracy gate`);
      const maxMapDrop = numberOption('--max-drop', values['max-drop'], NON_NEGATIVE) ?? DEFAULT_MAX_MAP_DROP;
      const maxF1Drop = numberOption('--max-f1-drop', values['max-f1-drop'], NON_NEGATIVE) ?? DEFAULT_MAX_F1_DROP;
      // The frames `model evaluate` reads with the same options.
      const maxFrames = numberOption('--frames', values.frames, POSITIVE_INT) ?? DEFAULT_GATE_FRAMES;
      const stride = numberOption('--stride', values.stride, POSITIVE_INT), offset = numberOption('--offset', values.offset, NON_NEGATIVE_INT);
      ({ decision } = await runGate({ reference: values.reference, candidate: values.model, data: { source: values.data, maxFrames, stride, offset, heldOut: true }, maxMapDrop, maxF1Drop, candidateMeta: meta, precision: precision === 'fp16' ? 'fp16' : 'int8' }));
      if (!decision.pass) {
        if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, decision })}\n`);
        else process.stderr.write(`refused: ${decision.reason}\noffer instead: ${decision.offer.join(', ')}\n`);
        return EXIT.failure;
      }
    }
    await mkdir(values.out, { recursive: true });
    // The name `model publish DIR` (and the agent) expects for this artifact type, whatever the source file was called.
    const dest = join(values.out, artifactFileName(target));
    // What DIR held describes an earlier model: gone before the new artifact is written.
    await rm(metadataPathFor(dest), { force: true });
    await rm(join(values.out, 'gate.json'), { force: true });
    await copyFile(values.model, dest);
    await writeFile(metadataPathFor(dest), metaBytes);
    // The decision is bound to these bytes: `model publish DIR` refuses another file under it.
    const artifact = { file: basename(dest), sha256: await sha256File(dest), size: (await stat(dest)).size };
    if (artifact.sha256 !== judged) {
      await rm(dest, { force: true });
      await rm(metadataPathFor(dest), { force: true });
      throw new InputError(`${values.model} changed while it was being ${decision ? 'gated' : 'published'} (sha256 ${judged.slice(0, 16)}… then ${artifact.sha256.slice(0, 16)}…): nothing was written to ${values.out}; run the publish again once the file is complete`);
    }
    await writeFile(join(values.out, 'gate.json'), `${JSON.stringify({ precision, artifact, decision: decision ?? null }, null, 2)}\n`);
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, artifact: dest, precision, decision })}\n`);
    else process.stdout.write(`published ${dest} (${precision})${decision ? `: ${decision.reason}` : ''}\n`);
    return EXIT.ok;
  },
};

/** The metadata file's JSON, validated; errors name the file. */
function parseMetadata(bytes: Buffer, path: string): ModelMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InputError(`The model metadata ${path} is not JSON (${(err as Error).message}); write it as fleetctl model import does, or copy the FP32 model's model.meta.json`);
  }
  return modelMetadataValidator.parse(raw, `model metadata ${path}`);
}

async function publishToRegistry(positionals: string[], v: { version?: string; target?: string; precision?: string; config?: string; 'data-dir'?: string; create?: boolean; json?: boolean }): Promise<number> {
  if (positionals.length !== 1) throw new UsageError(`Expected one model directory but received ${positionals.length}`);
  const config = loadFleetConfig(v.config);
  if (v['data-dir']) config.dataDir = v['data-dir'];
  // A mistyped data dir was a new fleet: a registry no server reads, and a new key no agent pins
  // (every device would refuse the model with E_SIGNATURE). Checked before anything is written.
  if (!v.create && !existsSync(config.dataDir)) {
    const from = v['data-dir'] ? '--data-dir' : v.config ? `dataDir in ${v.config}` : 'the default dataDir (give --data-dir or --config)';
    throw new InputError(`The fleet server's data dir ${resolve(config.dataDir)} (${from}) does not exist; name the server's (/var/lib/edge-fleet under systemd), or pass --create for a new fleet whose server has not started yet`);
  }
  if (!v.create && !existsSync(keyPathOf(config.dataDir))) {
    throw new InputError(`No signing key at ${keyPathOf(resolve(config.dataDir))}: is ${resolve(config.dataDir)} the fleet server's data dir? The server creates its key at first start; a publish is signed with that key (pass --create only for a new fleet whose server has not started yet)`);
  }
  const key = loadOrCreateServerKey(config.dataDir, { create: v.create === true });
  if (key.created) process.stderr.write(`note: created a new signing key ${key.path} (--create); agents must pin its public key (fleetctl key export)\n`);
  const db = openDatabase(dbPathOf(config));
  try {
    const registry = new ModelRegistry(db, config.dataDir);
    const { record, created } = await publishModelDir(registry, key.privateKey, {
      dir: positionals[0], version: v.version, target: v.target as ModelTarget | undefined, precision: v.precision as Manifest['precision'] | undefined,
    });
    const { path: _path, ...shown } = record;
    if (v.json) process.stdout.write(`${JSON.stringify({ ok: true, created, artifact: shown })}\n`);
    else process.stdout.write(`${created ? 'published' : 'already published (same bytes)'} ${record.name}@${record.version} ${record.target} ${record.precision} ${record.size} bytes sha256 ${record.sha256}\n`);
    return EXIT.ok;
  } finally {
    db.close();
  }
}
