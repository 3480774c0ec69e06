/**
 * Tracker configuration: one TypeBox schema gives the type, the defaults and the JSON Schema.
 * Defaults follow ByteTrack's published settings (Zhang et al. 2022, sec. 4.1: high threshold 0.6,
 * new-track threshold +0.1, 30-frame lost buffer), lowered to suit the CenterNet scores measured on
 * vtest.avi, where clearly visible people score 0.55-0.75.
 */
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';

export const TrackerConfigSchema = Type.Object({
  highScore: Type.Number({ minimum: 0, maximum: 1, default: 0.4, description: 'detections at or above this score take part in the first association' }),
  lowScore: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'detections between lowScore and highScore are used only in the second association (ByteTrack)' }),
  newTrackScore: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'an unmatched detection starts a track only at or above this score' }),
  matchIou: Type.Number({ minimum: 0, maximum: 1, default: 0.2, description: 'minimum IoU for the first association' }),
  lowMatchIou: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'minimum IoU for the second (low-score) association' }),
  unconfirmedMatchIou: Type.Number({ minimum: 0, maximum: 1, default: 0.3, description: 'minimum IoU to confirm a track seen once' }),
  matchBuffer: Type.Number({ minimum: 0, maximum: 2, default: 0.3, description: 'association compares boxes grown by this fraction of their size on each side (buffered IoU, C-BIoU: Yang et al. 2023), so a narrow pedestrian who moved more than its width between two detector runs still overlaps its prediction' }),
  lostBufferFrames: Type.Integer({ minimum: 0, default: 30, description: 'frames a lost track is kept for re-identification' }),
  maxPredictFrames: Type.Integer({ minimum: 0, default: 15, description: 'frames a track without a matching detection is still reported as predicted' }),
  perClass: Type.Boolean({ default: true, description: 'only match detections and tracks of the same class' }),
  fuseScore: Type.Boolean({ default: true, description: 'weight IoU by detection score in the first association (ByteTrack fuse_score)' }),
}, { additionalProperties: false });

export type TrackerConfig = Static<typeof TrackerConfigSchema>;

export const trackerConfigValidator = compileSchema(TrackerConfigSchema);

/** Defaults, derived from the schema so they are written once. */
export const DEFAULT_TRACKER_CONFIG: TrackerConfig = trackerConfigValidator.defaults();
