import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { CliCommand } from '../dispatch.js';
import { UsageError } from '../dispatch.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { Detector } from '../../infer/detector.js';
import { readImageFile } from '../../preprocess/preprocess.js';
import { PrivacyDetector } from '../../privacy/detector.js';
import { parsePrivacyConfig } from '../../privacy/schema.js';
import { resolvePrivacyPaths } from '../../config/load.js';
import { padRegion, redactImage } from '../../privacy/redactor.js';
import { ConfigError, received } from '../../util/errors.js';
import type { Detection } from '../../types.js';

const DEFAULT_DETECTOR = 'assets/models/coco-centernet/model.onnx';

/** The checkout (or release) this command runs from: agent/src/cli/commands/ from source, dist/ when bundled. */
function checkoutRoot(): string | undefined {
  return ['../../../../', '../'].map((u) => fileURLToPath(new URL(u, import.meta.url))).find((r) => existsSync(join(r, 'package.json')));
}

/**
 * Where a default model (a path relative to the checkout, `assets/models/...`) is: in the working
 * directory, else in the checkout this command runs from, so that `redact` finds it from any
 * directory. The path as given when neither has it, so that errors name what the defaults describe.
 */
export function defaultAssetPath(rel: string, cwd = process.cwd()): string {
  const root = checkoutRoot();
  return [join(cwd, rel), ...(root ? [join(root, rel)] : [])].find((p) => existsSync(p)) ?? rel;
}

export const command: CliCommand = {
  summary: 'blur faces and licence plates in a still image, as the agent does before anything leaves the device',
  usage: `usage: edge-agent redact --image IN --out OUT [--config privacy.json] [--method blur|pixelate]
                         [--detector MODEL.onnx] [--vehicle x,y,w,h ...] [--json]

Finds faces (BlazeFace) and licence plates (PP-OCR text inside vehicles, or the lower band of each
vehicle box) and hides them exactly as the agent's privacy gate does, so that an operator can check
the result on their own photos. OUT's extension picks the format (.jpg, .png, .webp).
  --config    a JSON file with the agent config's "privacy" section (defaults otherwise)
  --detector  main detector for vehicle and person boxes (default ${DEFAULT_DETECTOR} in the
              working directory or the checkout, when installed; a warning says when there is none)
  --vehicle   a vehicle box in source pixels; repeatable; the main detector's vehicles are then
              not used (it still runs for persons, when head bands are on)
  --json      print the regions found (kind, source, score, box) as JSON`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      image: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' }, method: { type: 'string' },
      detector: { type: 'string' }, vehicle: { type: 'string', multiple: true },
    });
    const imagePath = requireOption(values.image, 'image');
    const outPath = requireOption(values.out, 'out');
    if (!/\.(jpe?g|png|webp)$/i.test(outPath)) throw new UsageError(`Expected --out to end in .jpg, .png or .webp but received ${received(outPath)}`);
    let raw: Record<string, unknown> = {};
    if (values.config) {
      try {
        raw = JSON.parse(readFileSync(values.config, 'utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new ConfigError(`Cannot read the privacy config ${values.config}: ${(err as Error).message}. Expected a JSON file holding the "privacy" section`);
      }
      if (raw && typeof raw === 'object' && 'privacy' in raw) raw = raw.privacy as Record<string, unknown>;
    }
    if (values.method) raw = { ...raw, redaction: { ...(raw.redaction as object | undefined), method: values.method } };
    // Paths the file names are relative to it, as `run` and `check-config` read them; the defaults of
    // the paths it leaves out stay relative to the working directory.
    const config = parsePrivacyConfig(raw);
    const named = raw as { faces?: { modelPath?: string }; plates?: { textModelPath?: string }; rawRing?: { dir?: string } };
    if (values.config) {
      const fromFile = resolvePrivacyPaths(parsePrivacyConfig(raw), dirname(resolve(values.config)));
      if (named.faces?.modelPath !== undefined) config.faces.modelPath = fromFile.faces.modelPath;
      if (named.plates?.textModelPath !== undefined) config.plates.textModelPath = fromFile.plates.textModelPath;
      if (named.rawRing?.dir !== undefined) config.rawRing.dir = fromFile.rawRing.dir;
    }
    // The default model paths are the checkout's: found from any working directory.
    if (named.faces?.modelPath === undefined) config.faces.modelPath = defaultAssetPath(config.faces.modelPath);
    if (named.plates?.textModelPath === undefined && config.plates.textModelPath) config.plates.textModelPath = defaultAssetPath(config.plates.textModelPath);
    const warnings: string[] = [];
    const image = await readImageFile(imagePath);

    const given: Detection[] = (values.vehicle ?? []).map((v) => ({ classId: 2, label: 'car', score: 1, box: parseBox(v) }));
    const vehicleSource = given.length ? '--vehicle' : 'none';
    const defaultDetector = defaultAssetPath(DEFAULT_DETECTOR);
    const detectorPath = values.detector ?? (existsSync(defaultDetector) ? defaultDetector : undefined);
    // Vehicles carry plate bands, persons head bands: the main detector finds both. Vehicles given
    // by hand replace its vehicles only: it still looks for persons, as the agent's gate has them.
    const headBandsOn = config.faces.enabled && config.faces.headBand.enabled;
    const wantsVehicles = config.plates.enabled && given.length === 0;
    const boxes: Detection[] = [...given];
    let boxSource = { vehicles: vehicleSource, persons: 'none' };
    if ((wantsVehicles || headBandsOn) && detectorPath) {
      const main = await Detector.open({ modelPath: detectorPath });
      try {
        const found = await main.detect(image);
        boxes.push(...(given.length ? found.filter((d) => config.faces.headBand.labels.includes(d.label)) : found));
        boxSource = { vehicles: given.length ? vehicleSource : detectorPath, persons: headBandsOn ? detectorPath : 'none' };
      } finally {
        await main.close();
      }
    } else if (given.length === 0 && (wantsVehicles || headBandsOn)) {
      warnings.push(`no vehicle or person detector: ${DEFAULT_DETECTOR} is in neither the working directory nor ${checkoutRoot() ?? 'the checkout'}, so plates and the heads of persons without a detected face were not looked for; give --detector MODEL.onnx or --vehicle x,y,w,h`);
    } else if (headBandsOn) {
      warnings.push(`no person detector: ${DEFAULT_DETECTOR} is in neither the working directory nor ${checkoutRoot() ?? 'the checkout'}, so the heads of persons without a detected face were not looked for (--vehicle gives vehicles only); give --detector MODEL.onnx`);
    }
    if (config.plates.enabled && boxes.length > 0 && !(config.plates.textModelPath && existsSync(config.plates.textModelPath))) {
      warnings.push(`no plate text model (${config.plates.textModelPath ?? 'none configured'}): each vehicle's plate band is hidden instead (plates.fallback ${config.plates.fallback})`);
    }
    const privacy = await PrivacyDetector.open(config);
    let regions;
    try {
      regions = await privacy.run(image, boxes);
    } finally {
      await privacy.close();
    }
    const { image: out } = await redactImage(image, regions, config.redaction);
    await sharp(out.data, { raw: { width: out.width, height: out.height, channels: 3 } }).toFile(outPath);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({
        ok: true, image: imagePath, out: outPath, width: image.width, height: image.height, method: config.redaction.method, vehicles: boxSource.vehicles, persons: boxSource.persons, warnings,
        regions: regions.map((r) => ({ kind: r.kind, source: r.source, score: round(r.score), box: roundBox(r.box), padded: padRegion(r.box, r.paddingFrac ?? config.redaction.paddingFrac, image.width, image.height) ?? null })),
      })}\n`);
    } else {
      process.stdout.write(`${regions.length} region${regions.length === 1 ? '' : 's'} hidden (${config.redaction.method}) in ${imagePath} → ${outPath}\n`);
      for (const r of regions) process.stdout.write(`  ${r.kind.padEnd(6)} ${r.source.padEnd(11)} ${r.score.toFixed(2)}  x=${r.box.x.toFixed(0)} y=${r.box.y.toFixed(0)} w=${r.box.w.toFixed(0)} h=${r.box.h.toFixed(0)}\n`);
      for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
    }
    return 0;
  },
};

function parseBox(s: string) {
  const parts = s.split(',').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isFinite(n)) || parts[2] <= 0 || parts[3] <= 0) {
    throw new UsageError(`Expected --vehicle x,y,w,h (four numbers, w and h positive) but received ${received(s)}`);
  }
  return { x: parts[0], y: parts[1], w: parts[2], h: parts[3] };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function roundBox(b: { x: number; y: number; w: number; h: number }) {
  return { x: Math.round(b.x * 10) / 10, y: Math.round(b.y * 10) / 10, w: Math.round(b.w * 10) / 10, h: Math.round(b.h * 10) / 10 };
}
