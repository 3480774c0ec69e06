import type { Box } from '../types.js';

export type AlertKind = 'zone-enter' | 'zone-exit' | 'zone-occupancy' | 'line-cross' | 'dwell';

/** One alert raised by a rule; `id` is unique and stable, so publishing it twice is idempotent. */
export interface AlertEvent {
  id: string;
  kind: AlertKind;
  /** Wall-clock time the alert was raised (injected clock), ms since the Unix epoch. */
  timeMs: number;
  /** Presentation timestamp of the frame that raised it, ns. */
  ptsNs: number;
  frameIndex: number;
  cameraId: string;
  ruleId: string;
  trackId: number;
  classId: number;
  label: string;
  score: number;
  box: Box;
  /** Rule id of the zone for zone and dwell alerts; undefined for lines. */
  zone: string | undefined;
  /** Line crossings: which way. */
  direction?: 'ltr' | 'rtl';
  /** Occupancy alerts: how many objects are inside. */
  count?: number;
  /** Dwell alerts: time inside, ms. */
  dwellMs?: number;
}
