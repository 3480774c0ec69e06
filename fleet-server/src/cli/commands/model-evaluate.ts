/**
 * `fleetctl model evaluate --reference A.onnx --candidate B.onnx --data DIR|VIDEO [--labels L.json] [--max-drop 1.0] [--max-f1-drop 3]`
 */
import { parseArgs } from 'node:util';
import { UsageError, EXIT, type CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { numberOption, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT } from '../../../../agent/src/cli/args.js';
import { runGate, DEFAULT_GATE_FRAMES, DEFAULT_MAX_F1_DROP, DEFAULT_MAX_MAP_DROP } from '../../quantize/gate.js';

const usage = `
usage: fleetctl model evaluate --reference A.onnx --candidate B.onnx --data DIR|VIDEO
         [--labels L.json] [--frames N] [--stride K] [--offset O] [--max-drop POINTS] [--max-f1-drop POINTS]
         [--compare C.onnx] [--json]

Runs both models on the same frames (preprocessed as the agent does, decoded by the model's
decoder) and reports detection agreement: mAP@0.5 of the candidate against the reference's
detections (and against labels when given: {"frames":[{"index":N,"boxes":[{"classId","x","y","w","h"}]}]}),
per-class AP and output SNR; and, as a device reports them, the candidate's detections at the
metadata's score threshold against the reference's (recall, precision, F1 at IoU 0.5), which mAP
cannot see: scores that all sink keep their ranks and mAP but lose boxes at the threshold.
Exits 1 when the mAP drop exceeds --max-drop (default ${DEFAULT_MAX_MAP_DROP}) or the F1 drop exceeds
--max-f1-drop (default ${DEFAULT_MAX_F1_DROP}): the gate \`model publish\` applies to INT8 artifacts.
Defaults take ${DEFAULT_GATE_FRAMES} frames, every 10th of a video from offset 5, so they differ from
the calibration frames (every image of a directory).
--compare runs another build of the reference on the same frames and reports its agreement mAP and
its difference from the candidate's with a paired 95% interval (bootstrap over frames, both scored on
each draw): builds whose own intervals overlap may still differ for certain, and an interval that
holds 0 means these frames do not tell them apart. Frames on which its output is broken (NaN) score
as finding nothing and are named. The gate still judges the candidate alone.
`;

export const command: CliCommand = {
  summary: 'compare a quantized model with its FP32 reference (mAP@0.5 agreement, per-class, SNR)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv, strict: true,
      options: {
        reference: { type: 'string' }, candidate: { type: 'string' }, data: { type: 'string' }, labels: { type: 'string' }, compare: { type: 'string' },
        frames: { type: 'string', default: String(DEFAULT_GATE_FRAMES) }, stride: { type: 'string' }, offset: { type: 'string' },
        'max-drop': { type: 'string', default: String(DEFAULT_MAX_MAP_DROP) }, 'max-f1-drop': { type: 'string', default: String(DEFAULT_MAX_F1_DROP) }, json: { type: 'boolean' },
      },
    });
    if (!values.reference || !values.candidate || !values.data) throw new UsageError('Expected --reference A.onnx --candidate B.onnx --data DIR|VIDEO');
    const n = numberOption('--frames', values.frames, POSITIVE_INT)!, maxDrop = numberOption('--max-drop', values['max-drop'], NON_NEGATIVE)!;
    const maxF1Drop = numberOption('--max-f1-drop', values['max-f1-drop'], NON_NEGATIVE)!;
    const stride = numberOption('--stride', values.stride, POSITIVE_INT), offset = numberOption('--offset', values.offset, NON_NEGATIVE_INT);
    const { decision, report } = await runGate({ reference: values.reference, candidate: values.candidate, data: { source: values.data, maxFrames: n, stride, offset, heldOut: true }, labelsPath: values.labels, compare: values.compare, maxMapDrop: maxDrop, maxF1Drop });
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: decision.pass, decision, report })}\n`);
    else {
      const [lo, hi] = report.agreementMapCi95;
      process.stdout.write(`${report.frames} frames: agreement mAP@0.5 ${report.agreementMap.toFixed(2)} (95% interval over frames ${lo.toFixed(1)}–${hi.toFixed(1)})` + (report.labels ? `; vs labels ${report.labels.referenceMap.toFixed(2)} → ${report.labels.candidateMap.toFixed(2)}` : '') + '\n');
      const t = report.atThreshold;
      process.stdout.write(`  at score ≥ ${t.scoreThreshold ?? 'the decoder\'s threshold'}: F1 ${t.f1.toFixed(2)} (recall ${t.recall.toFixed(1)}, precision ${t.precision.toFixed(1)}; ${t.referenceDetections} ref, ${t.candidateDetections} cand, ${t.matched} matched at IoU 0.5)\n`);
      for (const c of report.perClass.filter((x) => x.referenceCount > 0)) process.stdout.write(`  ${c.label}: AP ${c.agreementAp.toFixed(1)} (${c.referenceCount} ref, ${c.candidateCount} cand)${c.labelApDelta !== undefined ? ` Δ ${c.labelApDelta.toFixed(1)}` : ''}\n`);
      for (const [k, v] of Object.entries(report.outputSnrDb)) process.stdout.write(`  SNR ${k}: ${Number.isNaN(v) ? 'none: the candidate\'s output holds NaN' : `${v.toFixed(1)} dB`}\n`);
      if (report.candidateBroken) process.stdout.write(`  broken output on ${report.candidateBroken.frames} of ${report.frames} frames: ${report.candidateBroken.first}\n`);
      const cmp = report.comparison;
      if (cmp) {
        const [dLo, dHi] = cmp.differenceCi95, signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}`;
        process.stdout.write(`compared with ${cmp.candidate}: agreement mAP@0.5 ${cmp.agreementMap.toFixed(2)}, ${signed(cmp.difference)} points against the candidate ` +
          `(paired 95% interval ${signed(dLo)} to ${signed(dHi)}: ${dLo > 0 ? 'better on these frames' : dHi < 0 ? 'worse on these frames' : 'these frames do not tell them apart'})\n`);
        if (cmp.broken) process.stdout.write(`  its output was broken on ${cmp.broken.frames} of ${report.frames} frames (scored as finding nothing there): ${cmp.broken.first}\n`);
      }
      process.stdout.write(`${decision.pass ? 'PASS' : 'FAIL'}: ${decision.reason}\n`);
    }
    return decision.pass ? EXIT.ok : EXIT.failure;
  },
};
