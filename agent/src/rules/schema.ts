/**
 * Alert rule configuration. One TypeBox schema per rule kind, a union on `type`; filters (classes,
 * minimum score) and cooldown are common to every rule. Coordinates are source pixels of the camera.
 */
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';

const PointSchema = Type.Object({ x: Type.Number(), y: Type.Number() }, { additionalProperties: false });

const common = {
  id: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'rule id, unique per camera; appears in every alert' }),
  /** Labels (e.g. "person") the rule applies to; empty = every class. */
  classes: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  minScore: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
  /** After an alert for one track, the same rule does not alert again for that track within this time. */
  cooldownMs: Type.Integer({ minimum: 0, default: 10_000 }),
  /** Which point of the box decides inside/outside: feet (bottom centre) suit people on a floor. */
  anchor: Type.Union([Type.Literal('bottom-center'), Type.Literal('center')], { default: 'bottom-center' }),
};

export const ZoneRuleSchema = Type.Object({
  type: Type.Literal('zone'),
  ...common,
  polygon: Type.Array(PointSchema, { minItems: 3 }),
  events: Type.Array(Type.Union([Type.Literal('enter'), Type.Literal('exit')]), { default: ['enter'] }),
  /** Alert when more than this many tracked objects are inside at once (edge-triggered). */
  maxOccupancy: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });

export const LineRuleSchema = Type.Object({
  type: Type.Literal('line'),
  ...common,
  from: PointSchema,
  to: PointSchema,
  /**
   * 'ltr': the object passes from the left to the right of the line as seen standing at `from` and
   * looking at `to` (image coordinates, y grows downward); 'rtl' the reverse; 'any' both.
   */
  direction: Type.Union([Type.Literal('any'), Type.Literal('ltr'), Type.Literal('rtl')], { default: 'any' }),
}, { additionalProperties: false });

export const DwellRuleSchema = Type.Object({
  type: Type.Literal('dwell'),
  ...common,
  polygon: Type.Array(PointSchema, { minItems: 3 }),
  /** Alert once per visit when an object stays inside this long (loitering). */
  minDwellMs: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

export const RuleSchema = Type.Union([ZoneRuleSchema, LineRuleSchema, DwellRuleSchema]);

export const RulesConfigSchema = Type.Object({
  rules: Type.Array(RuleSchema, { default: [] }),
  /** Forget a track's rule state when it has not been seen for this many frames. */
  forgetAfterFrames: Type.Integer({ minimum: 1, default: 150 }),
}, { additionalProperties: false });

export type ZoneRule = Static<typeof ZoneRuleSchema>;
export type LineRule = Static<typeof LineRuleSchema>;
export type DwellRule = Static<typeof DwellRuleSchema>;
export type Rule = Static<typeof RuleSchema>;
export type RulesConfig = Static<typeof RulesConfigSchema>;

export const rulesConfigValidator = compileSchema(RulesConfigSchema);
export const DEFAULT_RULES_CONFIG: RulesConfig = rulesConfigValidator.parse({}, 'rules config');
