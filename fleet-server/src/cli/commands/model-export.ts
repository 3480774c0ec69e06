/**
 * `fleetctl model export --model IN.onnx --target tflite|coreml --precision fp32|fp16|int8 -o OUT`
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { checkOutputs, requireFile } from '../paths.js';
import { UsageError, EXIT, type CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { numberOption, POSITIVE_INT } from '../../../../agent/src/cli/args.js';
import { exportModel } from '../../export/export-model.js';

const usage = `
usage: fleetctl model export --model IN.onnx --target tflite|coreml --precision fp32|fp16|int8 -o OUT
         [--calib DIR|VIDEO] [--frames N] [--stride K] [--method minmax|entropy|percentile] [--target-snr DB]
         [--float-islands auto|on|off] [--outputs NAME,NAME] [--report R.json] [--json]

Writes a TFLite flatbuffer (NHWC, ONNX Transpose pairs folded away; fp16 = float16 weights with
DEQUANTIZE; int8 = full-integer from calibration ranges on real frames, float I/O) or a Core ML
.mlmodel (NeuralNetwork spec; fp16 weights; int8 = 8-bit linear-quantized weights). The model's
.meta.json is copied next to OUT (a model without one removes an older one there); each file is
replaced whole or not at all. Outputs that depend on ops without a mapping (CenterNet's TopK
decoding tail) are left out and listed; the exported model ends at the outputs before them.

options:
  --model FILE        the FP32 ONNX model
  --target T          tflite | coreml
  --precision P       fp32 | fp16 | int8 (default fp32)
  --calib DIR|VIDEO   calibration frames (required for --target tflite --precision int8)
  --frames N          calibration frames (default 16); --stride K every K-th frame (video default 10)
  --method M          range method for int8 (default minmax)
  --target-snr DB     int8 mixed precision: a sensitivity search keeps float the activations (and the
                      ops reading them) needed to hold DB where the float head begins; larger, slower
  --float-islands M   int8: Convs whose int8 error would be amplified most run float (with the op
                      before them). auto (default) measures both files against FP32 in LiteRT.js on
                      two calibration frames and keeps the islands only for >= 1 dB at the worst output
  --outputs LIST      export only these ONNX values as outputs
  -o, --output FILE   the artifact to write
  --report FILE       write the JSON export report
`;

export const command: CliCommand = {
  summary: 'export an ONNX model to TFLite (Android, LiteRT) or Core ML (iOS)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv, strict: true,
      options: {
        model: { type: 'string' }, target: { type: 'string' }, precision: { type: 'string', default: 'fp32' }, calib: { type: 'string' },
        frames: { type: 'string', default: '16' }, stride: { type: 'string' }, method: { type: 'string', default: 'minmax' }, 'target-snr': { type: 'string' },
        'float-islands': { type: 'string', default: 'auto' }, outputs: { type: 'string' }, output: { type: 'string', short: 'o' }, report: { type: 'string' }, json: { type: 'boolean' },
      },
    });
    if (!values.model) throw new UsageError('Expected --model IN.onnx but received nothing');
    if (!values.output) throw new UsageError('Expected -o OUT but received nothing');
    const target = values.target;
    if (target !== 'tflite' && target !== 'coreml') throw new UsageError(`Expected --target tflite or coreml but received ${JSON.stringify(target)}`);
    const precision = values.precision;
    if (precision !== 'fp32' && precision !== 'fp16' && precision !== 'int8') throw new UsageError(`Expected --precision fp32, fp16 or int8 but received ${JSON.stringify(precision)}`);
    const method = values.method;
    if (method !== 'minmax' && method !== 'entropy' && method !== 'percentile') throw new UsageError(`Expected --method minmax, entropy or percentile but received ${JSON.stringify(method)}`);
    const frames = numberOption('--frames', values.frames, POSITIVE_INT)!, stride = numberOption('--stride', values.stride, POSITIVE_INT);
    const targetSnrDb = numberOption('--target-snr', values['target-snr'], { what: 'a number of dB' });
    if (targetSnrDb !== undefined && !(target === 'tflite' && precision === 'int8')) throw new UsageError('--target-snr applies to --target tflite --precision int8 only');
    const floatIslands = values['float-islands'];
    if (floatIslands !== 'auto' && floatIslands !== 'on' && floatIslands !== 'off') throw new UsageError(`Expected --float-islands auto, on or off but received ${JSON.stringify(floatIslands)}`);
    if (target === 'tflite' && precision === 'int8' && !values.calib) throw new UsageError('Expected --calib DIR|VIDEO for an int8 TFLite export (ranges come from real frames)');
    if (values.calib && !(target === 'tflite' && precision === 'int8')) {
      throw new UsageError(`--calib applies to --target tflite --precision int8 only (a ${target} ${precision} export reads no frames${target === 'coreml' && precision === 'int8' ? ': Core ML int8 quantizes the weights alone' : ''}); drop --calib`);
    }
    requireFile('--model', values.model);
    await checkOutputs(values.model, [values.output, ...(values.report ? [values.report] : [])]);
    const report = await exportModel({
      modelPath: values.model, outputPath: values.output, target, precision, method, targetSnrDb, floatIslands,
      outputs: values.outputs?.split(',').map((s) => s.trim()).filter(Boolean),
      calib: values.calib ? { source: values.calib, maxFrames: frames, stride } : undefined,
    });
    if (values.report) await writeFile(values.report, `${JSON.stringify(report, null, 2)}\n`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ok: true, ...report })}\n`);
    } else {
      process.stdout.write(`wrote ${report.output} (${target} ${precision}, ${(report.sizeBytes / 1e6).toFixed(2)} MB, sha256 ${report.sha256.slice(0, 16)}…)\n`);
      for (const n of report.notes) process.stdout.write(`  ${n}\n`);
    }
    return EXIT.ok;
  },
};
