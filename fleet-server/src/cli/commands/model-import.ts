/**
 * `fleetctl model import --from tfjs|onnx INPUT -o OUT.onnx --meta PRESET|FILE [--json]`
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { UsageError, EXIT, type CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { InputError } from '../../../../agent/src/util/errors.js';
import { importModel, resolveMetadataArg } from '../../convert/import-model.js';

const usage = `
usage: fleetctl model import --from tfjs|onnx INPUT -o OUT.onnx --meta PRESET|FILE [--json]

Imports a model into the conversion pipeline: a TF.js graph model (INPUT is its model.json, weight
shards next to it) is converted to ONNX (opset 17, NHWC input kept); an ONNX model is checked by
loading it with onnxruntime and copied as is. The metadata file (labels, preprocess, decoder) is
written next to the output as OUT.meta.json.

options:
  --from tfjs|onnx   the input format (required)
  -o, --output FILE  the ONNX file to write (required)
  --meta PRESET|FILE metadata: a preset name from configs/models (coco-centernet, blazeface-back, ...)
                     or a .meta.json file (required)
  --json             print the result as JSON
`;

export const command: CliCommand = {
  summary: 'import a TF.js graph model or an ONNX model (+ metadata) into the pipeline',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { from: { type: 'string' }, output: { type: 'string', short: 'o' }, meta: { type: 'string' }, json: { type: 'boolean' } },
    });
    if (values.from !== 'tfjs' && values.from !== 'onnx') throw new UsageError(`Expected --from tfjs or --from onnx but received ${values.from === undefined ? 'nothing' : JSON.stringify(values.from)}`);
    if (positionals.length !== 1) throw new UsageError(`Expected one INPUT path but received ${positionals.length}`);
    if (!values.output) throw new UsageError('Expected -o OUT.onnx but received nothing');
    if (!values.meta) throw new UsageError('Expected --meta PRESET|FILE (labels, preprocess, decoder) but received nothing');
    const metaPath = resolveMetadataArg(values.meta);
    let metadata: unknown;
    try {
      metadata = JSON.parse(await readFile(metaPath, 'utf8'));
    } catch (err) {
      throw new InputError(`Could not read metadata ${metaPath}: ${(err as Error).message}; pass a preset name from configs/models or a .meta.json file`, { cause: err });
    }
    const r = await importModel({ from: values.from, inputPath: positionals[0], outputPath: values.output, metadata });
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, ...r })}\n`);
    else {
      process.stdout.write(`wrote ${r.output} (${(r.sizeBytes / 1e6).toFixed(1)} MB; inputs ${r.inputs.join(', ')}; outputs ${r.outputs.join(', ')})\n`);
      process.stdout.write(`wrote ${r.metadataPath}\n`);
      if (r.stats) process.stdout.write(`${r.stats.tfNodes} TF nodes → ${r.stats.onnxNodes} ONNX nodes (${r.stats.transposePairsRemoved} transpose pairs removed)\n`);
    }
    return EXIT.ok;
  },
};
