import type { Box } from '../types.js';

/** Whether a box in a frame comes from a detection in that frame or from the tracker's prediction. */
export type BoxSource = 'detected' | 'predicted';

/** One tracked object in one frame, as the tracker reports it. */
export interface TrackedObject {
  /** Stable id, unique within one tracker instance, never reused. */
  trackId: number;
  classId: number;
  label: string;
  /** Score of the last matched detection. */
  score: number;
  /** Box in source pixels: the detection when `source` is 'detected', the Kalman prediction otherwise. */
  box: Box;
  source: BoxSource;
  /** Frames since the track was last matched to a detection (0 when detected in this frame). */
  framesSinceDetection: number;
  /** Number of detections matched to this track so far. */
  hits: number;
  /** Frame index at which the track started. */
  startFrame: number;
  /** Centre velocity estimated by the Kalman filter, pixels per frame. */
  vxPxPerFrame: number;
  vyPxPerFrame: number;
}

/** A track the tracker gave up on in this frame (lost past its lost buffer): it is not reported again. */
export interface RemovedTrack {
  trackId: number;
  /** Where the Kalman filter predicts it in the frame of removal, carried on since its last detection; source pixels. */
  box: Box;
}
