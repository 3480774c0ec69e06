/**
 * The privacy detector: faces (BlazeFace) and plates (text inside vehicles) on one frame. Each run
 * is timed and recorded into the coverage, success or failure, so that the gate knows which frames
 * are covered. A failure is recorded and rethrown: the caller decides whether to retry; the gate
 * meanwhile withholds images from that pts on.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Detection, RgbImage } from '../types.js';
import { describeError } from '../util/errors.js';
import { Detector } from '../infer/detector.js';
import type { HeadBandSpec, PrivacyConfig } from './schema.js';
import { headBands } from './persons.js';
import type { PrivacyCoverage, PrivacyRegion } from './coverage.js';
import type { PrivacyMetrics } from './metrics.js';
import { PlateFinder, type ImageDetector } from './plates.js';
import { TiledDetector } from './tiles.js';

export interface PrivacyDetectorOptions {
  faces?: ImageDetector;
  plates?: PlateFinder;
  coverage?: PrivacyCoverage;
  metrics?: PrivacyMetrics;
  /** Persons (from the main detector) whose head band holds no face get the band hidden; off when absent. */
  headBand?: HeadBandSpec;
  /** Faces below this score are dropped (detectors may return lower ones). */
  faceScoreThreshold?: number;
  /** Called on close, for detectors this object opened. */
  onClose?: () => Promise<void>;
}

export class PrivacyDetector {
  constructor(private readonly opts: PrivacyDetectorOptions) {}

  /** Opens the models named in the config. A missing text model means band-only plates; a missing face model is an error. */
  /**
   * `runTimeoutMs`: the agent's detector.runTimeoutMs, which the E_INFER_TIMEOUT message tells the
   * operator to raise; without it these models kept the 20 s default whatever the config said.
   */
  static async open(config: PrivacyConfig, extra: { coverage?: PrivacyCoverage; metrics?: PrivacyMetrics; intraOpThreads?: number; runTimeoutMs?: number } = {}): Promise<PrivacyDetector> {
    const opened: Detector[] = [];
    try {
      let faces: ImageDetector | undefined;
      if (config.faces.enabled) {
        const model = await Detector.open({ modelPath: config.faces.modelPath, scoreThreshold: config.faces.scoreThreshold, intraOpThreads: extra.intraOpThreads, runTimeoutMs: extra.runTimeoutMs });
        opened.push(model);
        const input = model.meta.preprocess;
        faces = new TiledDetector(model, config.faces.tiles, undefined, Math.min(input.width, input.height));
      }
      let text: Detector | undefined;
      const textPath = config.plates.textModelPath;
      if (config.plates.enabled && textPath && existsSync(textPath)) {
        text = await Detector.open({ modelPath: textPath, intraOpThreads: extra.intraOpThreads, runTimeoutMs: extra.runTimeoutMs });
        opened.push(text);
      }
      return new PrivacyDetector({
        faces, plates: new PlateFinder({ spec: config.plates, textDetector: text }), coverage: extra.coverage, metrics: extra.metrics,
        faceScoreThreshold: config.faces.scoreThreshold, headBand: faces ? config.faces.headBand : undefined,
        onClose: async () => { for (const d of opened) await d.close(); },
      });
    } catch (err) {
      for (const d of opened) await d.close();
      throw err;
    }
  }

  /**
   * Finds the regions to hide in `frame`; `detections` are the main detector's (for vehicles and
   * persons). `faceTiles: false` runs the face model on the whole frame only, not on its tiles (one
   * model run instead of 9 at 1080p: the privacy stage's per-frame pass, which keeps faces tracked
   * between frames; each image that leaves gets the tiled run). That pass also adds no head bands:
   * against the whole frame only, every person whose face is under about 90 px at 1080p would get
   * one, and the tiled run on the image judges the bands with the faces it finds. `persons`: the
   * persons to judge head bands for instead of those among `detections` (the privacy stage adds
   * those of nearby frames, carried to this one: see persons.ts `personsAt`).
   */
  async run(frame: RgbImage & { ptsNs?: number; sourceId?: string }, detections: readonly Detection[] = [], opts: { faceTiles?: boolean; persons?: readonly Detection[] } = {}): Promise<PrivacyRegion[]> {
    const t0 = performance.now();
    try {
      const regions: PrivacyRegion[] = [];
      const faces = this.opts.faces;
      if (faces) {
        const min = this.opts.faceScoreThreshold ?? 0;
        const found = opts.faceTiles === false && faces instanceof TiledDetector ? await faces.detectWholeFrame(frame) : await faces.detect(frame);
        for (const f of found) {
          // A NaN score (a broken model run) fails every threshold and was dropped silently, the face
          // left unhidden: it is kept with its score, which the redactor refuses (redactor.ts), so the
          // image is withheld (redaction-error), as for a box that cannot be placed.
          if (f.score >= min || !Number.isFinite(f.score)) regions.push({ kind: 'face', source: 'face-model', score: f.score, box: f.box });
        }
      }
      if (this.opts.headBand && opts.faceTiles !== false) regions.push(...headBands(opts.persons ?? detections, regions, this.opts.headBand));
      if (this.opts.plates) regions.push(...await this.opts.plates.find(frame, detections));
      this.opts.metrics?.detectorRun(performance.now() - t0, true);
      if (frame.ptsNs !== undefined) this.opts.coverage?.record({ ptsNs: frame.ptsNs, regions, sourceId: frame.sourceId });
      return regions;
    } catch (err) {
      this.opts.metrics?.detectorRun(performance.now() - t0, false);
      if (frame.ptsNs !== undefined) this.opts.coverage?.recordFailure(frame.ptsNs, describeError(err).message, frame.sourceId);
      throw err;
    }
  }

  async close(): Promise<void> {
    const c = this.opts.onClose;
    this.opts.onClose = undefined;
    await c?.();
  }
}
