/**
 * `fleetctl model quantize --model IN.onnx --calib DIR|VIDEO --method minmax|entropy|percentile [--per-channel] [--exclude NODES] [--target cpu|tensorrt] -o OUT.onnx --report R.json`
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { UsageError, EXIT, type CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { numberOption, POSITIVE_INT } from '../../../../agent/src/cli/args.js';
import { fp16PathFor, quantizeModel } from '../../quantize/quantize.js';
import { checkOutputs, requireFile } from '../paths.js';

const usage = `
usage: fleetctl model quantize --model IN.onnx --calib DIR|VIDEO --method minmax|entropy|percentile
         [--per-channel|--per-tensor] [--percentile P] [--exclude NODE,NODE] [--target cpu|tensorrt]
         [--ops weighted|all] [--activations uint8|int8] [--weight-range reduced|full] [--bias float|int32]
         [--no-equalize] [--no-gptq] [--target-snr DB [--float-weights int8|float]]
         [--frames N] [--stride K] [--fp16] [--trt-table] -o OUT.onnx [--report R.json] [--json]

Calibrates activation ranges on real frames (an image directory or a video file, preprocessed as the
agent does from IN.meta.json) and writes a QDQ INT8 ONNX model: per-channel symmetric int8 weights,
int32 bias (stored float by default: onnxruntime quantizes it with scale s_in·s_w at load, TensorRT
takes it so; --bias int32 stores the integers), 8-bit activations (asymmetric uint8 for cpu —
onnxruntime's x86 kernels fuse depthwise Convs only in that form — or --activations int8; symmetric
int8 for tensorrt). Post-processing after the last Conv stays float; --exclude keeps more nodes
float. A cpu build stores scales as binary16 and short value names.
OUT.meta.json is copied from the input.

options:
  --model FILE        the FP32 ONNX model (its .meta.json must sit next to it)
  --calib DIR|VIDEO   calibration frames
  --method M          minmax | entropy (KL threshold search) | percentile (default entropy: BlazeFace
                      agreed 100 with FP32 on its photos against 83.0 minmax and 82.8 percentile,
                      better than minmax by the paired interval; on the CenterNet's 96 held-out frames
                      the three read 91.7, 92.1 and 90.4, which those frames do not tell apart; see
                      docs/benchmarks.md; compare them on your footage with model evaluate --compare)
  --percentile P      percentile of |x| for --method percentile (default 99.999)
  --per-tensor        one weight scale per tensor instead of per output channel (default per-channel;
                      GPTQ rounds per channel, so --per-tensor skips it)
  --exclude LIST      comma-separated node names to keep in float
  --target T          cpu (asymmetric activations) | tensorrt (symmetric) (default cpu)
  --ops O             all: Conv/MatMul plus elementwise and shape ops (default); weighted: only
                      around Conv/MatMul/Gemm
  --activations T     uint8 (default) | int8 activations for --target cpu
  --weight-range R    reduced (default for cpu): weights that x86 CPUs without VNNI (AVX2 only)
                      cannot saturate in the int16 sums of onnxruntime's integer GEMMs: each pair of
                      weights summed into one int16 stays within 128 steps (a Conv reading an odd
                      channel count, MatMul and Gemm: 7-bit weights, ±63); depthwise Convs keep
                      ±127. The same build computes alike on every CPU. full: ±127 everywhere,
                      for fleets whose CPUs are all ARM or x86 with VNNI (lscpu: avx512_vnni or avx_vnni); on other
                      x86 CPUs such a build loses accuracy the gate cannot see unless it runs there.
                      tensorrt always gets full
  --bias B            float (default): each int8 Conv's bias is stored float (as binary16 where
                      that moves it by at most 1/32 of an output step) and onnxruntime (releases
                      after 1.20, its WeightBiasQuantization pass; checked on 1.30) quantizes it
                      to int32 with scale s_in·s_w[c] at load; no bias scale in the file. int32:
                      the float32 bias's integers and that scale are stored (an int32
                      DequantizeLinear, as onnxruntime's own quantizer writes), for a runtime that
                      fuses only such a bias (an older onnxruntime runs a float-bias Conv in
                      float). About 6 bytes a channel larger (CenterNet 0.284× of FP32 against
                      0.268×). cpu only: TensorRT builds keep it float
  --no-equalize       skip channel equalization of Conv pairs and the rescaling across hard-swish
                      and residual streams (on by default; exact in float)
  --no-gptq           round weights to nearest instead of GPTQ on the calibration frames (GPTQ by
                      default: it chooses each rounding to cancel the error on real inputs)
  --target-snr DB     mixed precision: a sensitivity search keeps float the activations needed to hold
                      this SNR where the float head begins (slow: one run per activation)
  --float-weights W   how a --target-snr build stores the weights of the Convs that read those
                      activations (they compute in float either way): int8 (default for cpu): the
                      integers GPTQ rounded them to, with a Cast and a Mul that onnxruntime folds
                      at load, so they run as fast as float weights and the file stays near the
                      INT8 size (CenterNet 0.275× of FP32 against 0.605× with float weights, 98.8
                      against 99.1 agreement mAP on the bench's 96 frames, not told apart); float:
                      their unrounded weights. tensorrt keeps them float
  --frames N          calibration frames to use (default 32); --stride K takes every K-th frame
                      (default 10 for a video, 1 for an image directory)
  --fp16              also write OUT.fp16.onnx
  --trt-table         also write OUT.calib.cache (TensorRT calibration table, text) and
                      OUT.calib.flatbuffers (the same for onnxruntime's TensorRT EP:
                      trt_int8_calibration_table_name, trt_int8_use_native_calibration_table false)
  -o, --output FILE   the INT8 model to write
  --report FILE       write the JSON report (sizes, counts, ranges)
`;

export const command: CliCommand = {
  summary: 'calibrate and quantize an ONNX model to INT8 QDQ (+ FP16, TensorRT table)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv, strict: true,
      options: {
        model: { type: 'string' }, calib: { type: 'string' }, method: { type: 'string', default: 'entropy' }, percentile: { type: 'string' },
        'per-channel': { type: 'boolean' }, 'per-tensor': { type: 'boolean' }, exclude: { type: 'string' }, target: { type: 'string', default: 'cpu' },
        frames: { type: 'string', default: '32' }, stride: { type: 'string' }, fp16: { type: 'boolean' }, 'trt-table': { type: 'boolean' },
        output: { type: 'string', short: 'o' }, report: { type: 'string' }, json: { type: 'boolean' },
        ops: { type: 'string', default: 'all' }, activations: { type: 'string', default: 'uint8' }, 'weight-range': { type: 'string' }, bias: { type: 'string', default: 'float' }, 'no-equalize': { type: 'boolean' }, 'no-gptq': { type: 'boolean' }, 'target-snr': { type: 'string' }, 'float-weights': { type: 'string' },
      },
    });
    if (!values.model) throw new UsageError('Expected --model IN.onnx but received nothing');
    if (!values.calib) throw new UsageError('Expected --calib DIR|VIDEO (calibration frames) but received nothing');
    if (!values.output) throw new UsageError('Expected -o OUT.onnx but received nothing');
    const method = values.method;
    if (method !== 'minmax' && method !== 'entropy' && method !== 'percentile') throw new UsageError(`Expected --method minmax, entropy or percentile but received ${JSON.stringify(method)}`);
    const target = values.target;
    if (target !== 'cpu' && target !== 'tensorrt') throw new UsageError(`Expected --target cpu or tensorrt but received ${JSON.stringify(target)}`);
    const frames = numberOption('--frames', values.frames, POSITIVE_INT)!, stride = numberOption('--stride', values.stride, POSITIVE_INT);
    const ops = values.ops;
    if (ops !== 'weighted' && ops !== 'all') throw new UsageError(`Expected --ops weighted or all but received ${JSON.stringify(ops)}`);
    const activationType = values.activations;
    if (activationType !== 'uint8' && activationType !== 'int8') throw new UsageError(`Expected --activations uint8 or int8 but received ${JSON.stringify(activationType)}`);
    const weightRange = values['weight-range'];
    if (weightRange !== undefined && weightRange !== 'reduced' && weightRange !== 'full') throw new UsageError(`Expected --weight-range reduced or full but received ${JSON.stringify(weightRange)}`);
    if (weightRange === 'reduced' && target === 'tensorrt') throw new UsageError('--weight-range reduced applies to --target cpu; TensorRT builds keep full-range int8 weights');
    const bias = values.bias;
    if (bias !== 'float' && bias !== 'int32') throw new UsageError(`Expected --bias float or int32 but received ${JSON.stringify(bias)}`);
    if (bias === 'int32' && target === 'tensorrt') throw new UsageError('--bias int32 applies to --target cpu; TensorRT builds keep the bias float');
    const targetSnrDb = numberOption('--target-snr', values['target-snr'], { what: 'a number of dB' });
    const floatConvWeights = values['float-weights'];
    if (floatConvWeights !== undefined && floatConvWeights !== 'int8' && floatConvWeights !== 'float') throw new UsageError(`Expected --float-weights int8 or float but received ${JSON.stringify(floatConvWeights)}`);
    if (floatConvWeights !== undefined && targetSnrDb === undefined) throw new UsageError('--float-weights applies to --target-snr builds (the Convs the sensitivity search keeps float); add --target-snr DB or drop --float-weights');
    if (floatConvWeights === 'int8' && target === 'tensorrt') throw new UsageError('--float-weights int8 applies to --target cpu; TensorRT builds keep the float Convs\' weights float');
    if (values['per-channel'] && values['per-tensor']) throw new UsageError('Expected one of --per-channel and --per-tensor, not both');
    if (values.percentile !== undefined && method !== 'percentile') throw new UsageError(`--percentile applies to --method percentile, but the method is ${method}; add --method percentile or drop --percentile`);
    const percentile = numberOption('--percentile', values.percentile, { what: 'a percentile in (0, 100]', above: 0, max: 100 });
    requireFile('--model', values.model);
    await checkOutputs(values.model, [values.output, ...(values.fp16 ? [fp16PathFor(values.output)] : []), ...(values.report ? [values.report] : [])]);
    const report = await quantizeModel({
      modelPath: values.model, outputPath: values.output, frames: { source: values.calib, maxFrames: frames, stride }, method, percentile, target,
      perChannel: !values['per-tensor'], exclude: values.exclude ? values.exclude.split(',').map((s) => s.trim()).filter(Boolean) : [],
      fp16: values.fp16, trtTable: values['trt-table'], ops, activationType, equalize: !values['no-equalize'], gptq: !values['no-gptq'], targetSnrDb, weightRange, bias, floatConvWeights,
    });
    if (values.report) await writeFile(values.report, `${JSON.stringify(report, null, 2)}\n`);
    if (values.json) {
      const { ranges: _ranges, ...brief } = report;
      process.stdout.write(`${JSON.stringify({ ok: true, ...brief })}\n`);
    } else {
      process.stdout.write(`wrote ${report.output} (${(report.sizeBytes.int8 / 1e6).toFixed(2)} MB, ${report.sizeRatio.toFixed(3)}× of FP32; ${report.stats.quantizedActivations} activations, ${report.stats.quantizedWeights} weights quantized; ${report.calibrationFrames} calibration frames, ${report.method}, ${report.weightRange} weight range)\n`);
      const p = report.prepared;
      if (report.keptFloat.length > 0) process.stdout.write(`mixed precision: ${report.keptFloat.length} activations kept float, ${report.stats.floatNodes} nodes computing in float; ${report.stats.int8WeightFloatConvs} of their Convs store int8 weights (--float-weights ${report.floatConvWeights})\n`);
      process.stdout.write(`prepared: ${p.foldedAffines} affine ops folded into Convs, ${p.equalizedPairs} Conv pairs equalized, ${p.rescaledConvs} Convs rescaled across hard-swish, ${p.residualStreams} residual streams rescaled, ${p.gptqConvs} Convs rounded by GPTQ, ${p.globalPools} spatial means as GlobalAveragePool\n`);
      if (report.fp16Output) process.stdout.write(`wrote ${report.fp16Output}\n`);
      if (report.trtTable) process.stdout.write(`wrote ${report.trtTable}\n`);
      if (report.trtFlatbuffer) process.stdout.write(`wrote ${report.trtFlatbuffer}\n`);
      if (values.report) process.stdout.write(`wrote ${values.report}\n`);
    }
    return EXIT.ok;
  },
};
