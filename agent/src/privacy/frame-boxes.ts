/**
 * The main detector's boxes of a camera's frame as the privacy stage is given them: every tracked
 * box, and the camera's latest raw detections. Both are needed (the tracker confirms a vehicle only
 * on its second detection and above its own score threshold, and detector.labels may drop "car"
 * from the tracks; between detections a track's box is the tracker's prediction, which lags a person
 * who stands up or turns, while the detection is where the person was last seen). But a person given
 * twice, as a track and as the detection it was matched to, was two persons to the head bands: a
 * face stands for one person only, so the other copy kept a band over a head whose face was found.
 * So a detection matched to a reported track counts once with it: dropped where the track's box is
 * the detection's own (the frame it was detected in), merged with it into one person whose head
 * band spans both bands where the track's box has moved on (the frames after); a vehicle, whose
 * plates are judged one box at a time, is given both boxes.
 */
import type { Box, Detection } from '../types.js';
import type { TrackedObject } from '../track/types.js';
import type { HeadBandSpec } from './schema.js';
import { personOfBoth } from './persons.js';

interface LastDetections {
  detections: readonly Detection[];
  /** Per detection: the track it was matched to in its own frame, if one was reported. */
  trackIds: ReadonlyArray<number | undefined>;
}

export interface FrameBoxesOptions {
  /** Which labels are persons, and their head band (`privacy.faces.headBand`). */
  band: Pick<HeadBandSpec, 'labels' | 'top' | 'bottom'>;
}

export class FrameBoxes {
  /** Per camera: the detector's output on its last detected frame (before the label filter). */
  private readonly last = new Map<string, LastDetections>();

  constructor(private readonly opts: FrameBoxesOptions) {}

  /**
   * The boxes for one processed frame of `cameraId`: `detections` when the detector ran on it
   * (undefined otherwise: the last ones still count), `tracks` as the tracker reported them. A raw
   * detection is taken into its track only while the very track it was matched to is reported:
   * never because it merely overlaps a track, so two people whose boxes cross are both given.
   */
  boxesFor(cameraId: string, detections: readonly Detection[] | undefined, tracks: readonly TrackedObject[]): Detection[] {
    if (detections) this.last.set(cameraId, { detections, trackIds: matchedTracks(detections, tracks) });
    const last = this.last.get(cameraId);
    const rawOf = new Map<number, Detection>();
    const untracked: Detection[] = [];
    last?.detections.forEach((d, i) => {
      const id = last.trackIds[i];
      if (id !== undefined && tracks.some((t) => t.trackId === id)) rawOf.set(id, d);
      else untracked.push(d);
    });
    const tracked = tracks.flatMap((t): Detection[] => {
      const own: Detection = { classId: t.classId, label: t.label, score: t.score, box: t.box };
      const raw = rawOf.get(t.trackId);
      if (!raw || sameBox(raw.box, t.box)) return [own];
      if (!this.opts.band.labels.includes(t.label) || !this.opts.band.labels.includes(raw.label)) return [own, raw];
      return [{ ...own, score: Math.max(t.score, raw.score), box: personOfBoth(t.box, raw.box, this.opts.band) }];
    });
    return [...tracked, ...untracked];
  }
}

/**
 * For each detection, the track detected with it in this frame: the tracker reports a matched
 * track's box as a copy of its detection's (tracker.ts `output`), so the same label and the very
 * same box are that detection. A track whose voted label differs is not taken for it (its person
 * or vehicle would lose its band otherwise). Each track stands for one detection.
 */
function matchedTracks(detections: readonly Detection[], tracks: readonly TrackedObject[]): (number | undefined)[] {
  const taken = new Set<number>();
  return detections.map((d) => {
    const t = tracks.find((c) => c.source === 'detected' && !taken.has(c.trackId) && c.label === d.label && sameBox(c.box, d.box));
    if (!t) return undefined;
    taken.add(t.trackId);
    return t.trackId;
  });
}

function sameBox(a: Box, b: Box): boolean {
  return a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h;
}
