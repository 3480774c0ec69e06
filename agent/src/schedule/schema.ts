/**
 * Detection schedule and motion gate configuration (TypeBox: type, defaults and JSON Schema at once).
 */
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';

export const MotionGateConfigSchema = Type.Object({
  enabled: Type.Boolean({ default: true }),
  /**
   * Width of the grid of blocks on which the changed fraction is counted; height follows the aspect
   * ratio. Changes are found on cells at most 12 source pixels wide (several per block on a wide frame).
   */
  thumbWidth: Type.Integer({ minimum: 8, maximum: 640, default: 64 }),
  /** Grey-level difference (0-255) of a cell's mean above which the cell counts as changed. */
  pixelThreshold: Type.Integer({ minimum: 1, maximum: 255, default: 20 }),
  /** Fraction of changed blocks that counts as motion. */
  minChangedFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.002 }),
  // default {}: a config without a motion section still gets every motion default (ajv fills the
  // empty object, then its properties).
}, { additionalProperties: false, default: {} });

export const ScheduleConfigSchema = Type.Object({
  mode: Type.Union([Type.Literal('fixed'), Type.Literal('adaptive')], { default: 'fixed' }),
  /** Fixed mode: run the detector on every `interval`-th frame. */
  interval: Type.Integer({ minimum: 1, maximum: 300, default: 3 }),
  /** Adaptive mode: average detector time allowed per camera frame, in ms (k = ceil(inferMs / budget)). */
  latencyBudgetMs: Type.Number({ exclusiveMinimum: 0, default: 33 }),
  minInterval: Type.Integer({ minimum: 1, default: 1 }),
  maxInterval: Type.Integer({ minimum: 1, default: 15 }),
  /** Weight of the newest inference time in the moving average (0-1]. */
  latencyEwmaAlpha: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.2 }),
  /** Even without motion, detect at least every this many frames (stationary objects stay fresh). */
  maxIdleFrames: Type.Integer({ minimum: 1, default: 150 }),
  motion: MotionGateConfigSchema,
}, { additionalProperties: false });

export type MotionGateConfig = Static<typeof MotionGateConfigSchema>;
export type ScheduleConfig = Static<typeof ScheduleConfigSchema>;

export const scheduleConfigValidator = compileSchema(ScheduleConfigSchema);
export const DEFAULT_SCHEDULE_CONFIG: ScheduleConfig = scheduleConfigValidator.defaults();
export const DEFAULT_MOTION_GATE_CONFIG: MotionGateConfig = DEFAULT_SCHEDULE_CONFIG.motion;
