/**
 * Core value types shared by every stage of the agent. Boxes are always in source pixels of the
 * frame they belong to, as named fields (never positional tuples).
 */

/** Axis-aligned box in source pixels: top-left corner plus width and height. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Point {
  x: number;
  y: number;
}

/** One object found by a detector in one frame. */
export interface Detection {
  classId: number;
  label: string;
  score: number;
  box: Box;
  /** Optional key points in source pixels (BlazeFace eyes, nose, ...). */
  keypoints?: Point[];
}

/** A decoded video frame as packed 8-bit RGB (3 bytes per pixel, no row padding). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Frame extends RgbImage {
  /** Index of the frame within its source, counting from 0 (frames dropped later keep their index). */
  index: number;
  /** Presentation timestamp in nanoseconds as reported by GStreamer (or synthesised from the index). */
  ptsNs: number;
  /** Monotonic wall time (process.hrtime) at which capture handed the frame over, in nanoseconds. */
  capturedAtNs: number;
  sourceId: string;
  /**
   * Number of the capture connection the frame came from (0 for the first, one more after each
   * restart of its source), where the source numbers them. Across a new one the scene may have
   * changed entirely, and the time between is no time anything was seen.
   */
  segment?: number;
}
