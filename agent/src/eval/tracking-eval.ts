/**
 * Tracker evaluation loop: the detector runs on every frame; one tracker gets every frame's
 * detections (the reference), another gets them only on every k-th frame and predicts in between.
 * Feeding the interval tracker the reference detections on frames where k divides the index is the
 * same as running the detector at interval k, because the detector is deterministic for a frame —
 * and it halves the detector work of the evaluation.
 */
import type { Detection, Frame } from '../types.js';
import { ByteTracker } from '../track/tracker.js';
import type { TrackerConfig } from '../track/schema.js';
import type { TrackedObject } from '../track/types.js';
import { motMetrics, selfIdSwitches, type MotFrame, type MotMetrics } from './mot.js';

export interface TrackingEvalOptions {
  frames: AsyncIterable<Frame>;
  detect: (frame: Frame) => Promise<Detection[]>;
  interval: number;
  tracker?: Partial<TrackerConfig>;
  /** Keep only these labels (e.g. ['person']); all when absent. */
  labels?: string[];
  maxFrames?: number;
  iouThreshold?: number;
}

export interface TrackingEvalReport {
  frames: number;
  interval: number;
  detectorCalls: { reference: number; interval: number; saved: number; savedFraction: number };
  /** Mean IoU of interval-run boxes vs the reference on matched tracks (all frames / predicted only). */
  meanIou: number;
  meanIouInterpolated: number | undefined;
  /** ID switches of each run on its own (a new id born where a just-ended track was). */
  idSwitches: { reference: number; interval: number };
  /** CLEAR-MOT ID switches of the interval run against the reference run. */
  idSwitchesVsReference: number;
  mota: number;
  idf1: number;
  tracks: { reference: number; interval: number };
  mot: MotMetrics;
  inferenceMsAvg: number;
}

export async function evaluateTracking(opts: TrackingEvalOptions): Promise<TrackingEvalReport> {
  const k = opts.interval;
  const ref = new ByteTracker(opts.tracker);
  const ivl = new ByteTracker(opts.tracker);
  const refFrames: MotFrame[] = [];
  const ivlFrames: MotFrame[] = [];
  let n = 0;
  let intervalCalls = 0;
  let inferMs = 0;
  for await (const frame of opts.frames) {
    if (opts.maxFrames !== undefined && n >= opts.maxFrames) break;
    const t0 = performance.now();
    let dets = await opts.detect(frame);
    inferMs += performance.now() - t0;
    if (opts.labels) dets = dets.filter((d) => opts.labels!.includes(d.label));
    const detectNow = n % k === 0;
    if (detectNow) intervalCalls++;
    refFrames.push(toMot(frame.index, ref.update(frame.index, dets)));
    ivlFrames.push(toMot(frame.index, ivl.update(frame.index, detectNow ? dets : null)));
    n++;
  }
  const mot = motMetrics(refFrames, ivlFrames, { iouThreshold: opts.iouThreshold ?? 0.5 });
  return {
    frames: n,
    interval: k,
    detectorCalls: { reference: n, interval: intervalCalls, saved: n - intervalCalls, savedFraction: n > 0 ? (n - intervalCalls) / n : 0 },
    meanIou: mot.meanIou,
    meanIouInterpolated: mot.meanIouPredicted,
    idSwitches: { reference: selfIdSwitches(refFrames), interval: selfIdSwitches(ivlFrames) },
    idSwitchesVsReference: mot.idSwitches,
    mota: mot.mota,
    idf1: mot.idf1,
    tracks: { reference: countIds(refFrames), interval: countIds(ivlFrames) },
    mot,
    inferenceMsAvg: n > 0 ? inferMs / n : 0,
  };
}

function toMot(frameIndex: number, tracks: TrackedObject[]): MotFrame {
  return { frameIndex, objects: tracks.map((t) => ({ id: t.trackId, box: t.box, source: t.source })) };
}

function countIds(frames: MotFrame[]): number {
  return new Set(frames.flatMap((f) => f.objects.map((o) => o.id))).size;
}
