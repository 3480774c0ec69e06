/**
 * The main detector's boxes of a camera's frame as the privacy stage is given them: every tracked
 * box, and the camera's latest raw detections that no reported track stands for. Both are needed
 * (the tracker confirms a vehicle only on its second detection and above its own score threshold,
 * and detector.labels may drop "car" from the tracks), but a person given twice, as a track and as
 * the detection it was matched to, was two persons to the head bands: a face stands for one person
 * only, so the other copy kept a band over a head whose face was found.
 */
import type { Box, Detection } from '../types.js';
import type { TrackedObject } from '../track/types.js';

interface LastDetections {
  detections: readonly Detection[];
  /** Per detection: the track it was matched to in its own frame, if one was reported. */
  trackIds: ReadonlyArray<number | undefined>;
}

export class FrameBoxes {
  /** Per camera: the detector's output on its last detected frame (before the label filter). */
  private readonly last = new Map<string, LastDetections>();

  /**
   * The boxes for one processed frame of `cameraId`: `detections` when the detector ran on it
   * (undefined otherwise: the last ones still count), `tracks` as the tracker reported them. A raw
   * detection is left out only while the very track it was matched to is reported: never because
   * it merely overlaps a track, so two people whose boxes cross are both given.
   */
  boxesFor(cameraId: string, detections: readonly Detection[] | undefined, tracks: readonly TrackedObject[]): Detection[] {
    if (detections) this.last.set(cameraId, { detections, trackIds: matchedTracks(detections, tracks) });
    const tracked = tracks.map((t): Detection => ({ classId: t.classId, label: t.label, score: t.score, box: t.box }));
    const last = this.last.get(cameraId);
    if (!last) return tracked;
    const reported = new Set(tracks.map((t) => t.trackId));
    const untracked = last.detections.filter((_, i) => {
      const id = last.trackIds[i];
      return id === undefined || !reported.has(id);
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
