/**
 * `edge-agent eval-tracking --input VIDEO --interval K [--json]`: runs the detector on every frame as
 * the reference and, with the same detections on every K-th frame only, the tracker interpolating in
 * between; prints mean IoU against the reference on matched tracks, ID switches of both runs, MOTA,
 * IDF1 and the detector calls saved.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CliCommand } from '../dispatch.js';
import { UsageError, EXIT } from '../dispatch.js';
import { numberOption, POSITIVE_INT } from '../args.js';
import type { Detection, RgbImage } from '../../types.js';
import { InputError, ModelError } from '../../util/errors.js';
import { evaluateTracking } from '../../eval/tracking-eval.js';
import { videoFileFrames } from '../../capture/file-frames.js';
import { Detector } from '../../infer/detector.js';

const DEFAULT_MODEL = 'assets/models/coco-centernet/model.onnx';

interface DetectorLike {
  detect(image: RgbImage): Promise<Detection[]>;
  close(): Promise<void>;
}

function openDetector(modelPath: string): Promise<DetectorLike> {
  return Detector.open({ modelPath });
}

export const command: CliCommand = {
  summary: 'measure tracking at a detection interval against every-frame detection',
  usage: `
usage: edge-agent eval-tracking --input VIDEO [--interval K] [--model PATH] [--frames N] [--labels a,b] [--json]

Runs the detector on every frame (the reference tracker gets all detections) and feeds the same
detections to a second tracker only on every K-th frame, which predicts in between. Prints:
  mean IoU of interval-run boxes vs the reference on matched tracks (all frames, interpolated only),
  ID switches of each run (a new id born where a just-ended track was) and vs the reference (CLEAR MOT),
  MOTA and IDF1 of the interval run against the reference, detector calls saved.

options:
  --input VIDEO     video file GStreamer can decode (required)
  --interval K      detect every K-th frame (default 3)
  --model PATH      detector model with its .meta.json (default ${DEFAULT_MODEL})
  --frames N        stop after N frames (default: whole video)
  --labels LIST     only track these labels, comma-separated (default: all)
  --json            print one JSON object
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        input: { type: 'string' }, interval: { type: 'string', default: '3' }, model: { type: 'string', default: DEFAULT_MODEL },
        frames: { type: 'string' }, labels: { type: 'string' }, json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!values.input) throw new UsageError('Expected --input VIDEO but received nothing');
    const interval = numberOption('--interval', values.interval, POSITIVE_INT)!;
    const maxFrames = numberOption('--frames', values.frames, POSITIVE_INT);
    if (!existsSync(values.input)) throw new InputError(`Expected a video file at ${values.input} but there is none; run scripts/setup.sh for assets/video/vtest.avi`);
    if (!existsSync(values.model!)) throw new ModelError(`Expected a detector model at ${values.model} but there is none; give --model PATH or run scripts/setup.sh`);
    const detector = await openDetector(values.model!);
    const ac = new AbortController();
    try {
      const report = await evaluateTracking({
        frames: videoFileFrames({ path: values.input, maxFrames, signal: ac.signal }),
        detect: (f) => detector.detect(f),
        interval,
        maxFrames,
        labels: values.labels ? values.labels.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      });
      if (values.json) {
        const { mot: _mot, ...rest } = report;
        process.stdout.write(`${JSON.stringify({ ok: true, input: values.input, model: values.model, ...rest, mot: report.mot })}\n`);
      } else {
        const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(3));
        process.stdout.write([
          `frames ${report.frames}, interval ${interval}, detector calls ${report.detectorCalls.interval} instead of ${report.detectorCalls.reference} (saved ${report.detectorCalls.saved}, ${(100 * report.detectorCalls.savedFraction).toFixed(0)}%)`,
          `mean IoU vs reference on matched tracks: ${f(report.meanIou)} (interpolated boxes only: ${f(report.meanIouInterpolated)})`,
          `ID switches: every-frame run ${report.idSwitches.reference}, interval run ${report.idSwitches.interval}; vs reference (CLEAR MOT) ${report.idSwitchesVsReference}`,
          `MOTA ${f(report.mota)}  IDF1 ${f(report.idf1)}  tracks ${report.tracks.reference} / ${report.tracks.interval}`,
          '',
        ].join('\n'));
      }
      return EXIT.ok;
    } finally {
      ac.abort();
      await detector.close();
    }
  },
};
