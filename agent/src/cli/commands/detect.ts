import type { CliCommand } from '../dispatch.js';
import { numberOption, parseCommandArgs, requireOption } from '../args.js';
import { Detector } from '../../infer/detector.js';
import { readImageFile } from '../../preprocess/preprocess.js';

export const command: CliCommand = {
  summary: 'run a model on one image and print its detections',
  usage: `usage: edge-agent detect --model MODEL.onnx --image IMAGE [--providers cpu,cuda] [--score 0.5] [--json]

Runs the model (its metadata file MODEL.meta.json must sit next to it) on one image and prints
each detection: label, score and box in source pixels (x, y, w, h).`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      model: { type: 'string' }, image: { type: 'string' }, providers: { type: 'string' }, score: { type: 'string' },
    });
    const modelPath = requireOption(values.model, 'model');
    const imagePath = requireOption(values.image, 'image');
    const image = await readImageFile(imagePath);
    const detector = await Detector.open({
      modelPath,
      providers: values.providers?.split(',').map((s) => s.trim()).filter(Boolean),
      scoreThreshold: numberOption('--score', values.score, { what: 'a score threshold in [0, 1]', min: 0, max: 1 }),
    });
    try {
      const { detections, timings } = await detector.detectTimed(image);
      if (values.json) {
        process.stdout.write(`${JSON.stringify({
          ok: true, model: modelPath, image: imagePath, width: image.width, height: image.height,
          provider: detector.provider, timings,
          detections: detections.map((d) => ({ label: d.label, classId: d.classId, score: round(d.score, 4), box: { x: round(d.box.x, 1), y: round(d.box.y, 1), w: round(d.box.w, 1), h: round(d.box.h, 1) } })),
        })}\n`);
      } else {
        process.stdout.write(`${detections.length} detection${detections.length === 1 ? '' : 's'} in ${imagePath} (${image.width}x${image.height}, ${detector.provider}, ${timings.inferMs.toFixed(1)} ms)\n`);
        for (const d of detections) {
          process.stdout.write(`  ${d.label.padEnd(16)} ${d.score.toFixed(3)}  x=${d.box.x.toFixed(0)} y=${d.box.y.toFixed(0)} w=${d.box.w.toFixed(0)} h=${d.box.h.toFixed(0)}\n`);
        }
      }
      return 0;
    } finally {
      await detector.close();
    }
  },
};

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
