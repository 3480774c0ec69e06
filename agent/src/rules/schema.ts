/**
 * Alert rule configuration. One TypeBox schema per rule kind, a union on `type`; filters (classes,
 * minimum score) and cooldown are common to every rule. Coordinates are source pixels of the camera.
 *
 * ajv does not apply `default` inside anyOf branches (ajv docs, "Assigning defaults"), so optional
 * fields of a rule are Optional in the schema and `withRuleDefaults` fills them from RULE_DEFAULTS.
 */
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema, Discriminated } from '../util/schema.js';

const PointSchema = Type.Object({ x: Type.Number(), y: Type.Number() }, { additionalProperties: false });

export const RULE_DEFAULTS = {
  classes: [] as string[],
  minScore: 0,
  cooldownMs: 10_000,
  anchor: 'bottom-center' as 'bottom-center' | 'center',
  events: ['enter'] as Array<'enter' | 'exit'>,
  direction: 'any' as 'any' | 'ltr' | 'rtl',
};

const common = {
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'rule id, unique per camera; appears in every alert (at most 64 characters, as the alert protocol allows)' }),
  /** Labels (e.g. "person") the rule applies to; empty = every class. */
  classes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: RULE_DEFAULTS.classes })),
  minScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: RULE_DEFAULTS.minScore })),
  /** After an alert for one track, the same rule does not alert again for that track within this time. */
  cooldownMs: Type.Optional(Type.Integer({ minimum: 0, default: RULE_DEFAULTS.cooldownMs })),
  /** Which point of the box decides inside/outside: feet (bottom centre) suit people on a floor. */
  anchor: Type.Optional(Type.Union([Type.Literal('bottom-center'), Type.Literal('center')], { default: RULE_DEFAULTS.anchor })),
};

export const ZoneRuleSchema = Type.Object({
  type: Type.Literal('zone'),
  ...common,
  polygon: Type.Array(PointSchema, { minItems: 3 }),
  events: Type.Optional(Type.Array(Type.Union([Type.Literal('enter'), Type.Literal('exit')]), { default: RULE_DEFAULTS.events })),
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
  direction: Type.Optional(Type.Union([Type.Literal('any'), Type.Literal('ltr'), Type.Literal('rtl')], { default: RULE_DEFAULTS.direction })),
}, { additionalProperties: false });

export const DwellRuleSchema = Type.Object({
  type: Type.Literal('dwell'),
  ...common,
  polygon: Type.Array(PointSchema, { minItems: 3 }),
  /** Alert once per visit when an object stays inside this long (loitering). */
  minDwellMs: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

// Told apart by "type": one mistake in a rule is one problem, not one per kind of rule it is not.
export const RuleSchema = Discriminated('type', [ZoneRuleSchema, LineRuleSchema, DwellRuleSchema]);

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

type Filled<T> = T & { classes: string[]; minScore: number; cooldownMs: number; anchor: 'bottom-center' | 'center' };
export type ResolvedZoneRule = Filled<ZoneRule> & { events: Array<'enter' | 'exit'> };
export type ResolvedLineRule = Filled<LineRule> & { direction: 'any' | 'ltr' | 'rtl' };
export type ResolvedDwellRule = Filled<DwellRule>;
export type ResolvedRule = ResolvedZoneRule | ResolvedLineRule | ResolvedDwellRule;

/** Fills every optional field of a validated rule with its default. */
export function withRuleDefaults(rule: Rule): ResolvedRule {
  const base = { classes: RULE_DEFAULTS.classes, minScore: RULE_DEFAULTS.minScore, cooldownMs: RULE_DEFAULTS.cooldownMs, anchor: RULE_DEFAULTS.anchor };
  const drop = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  switch (rule.type) {
    case 'zone': return { ...base, events: RULE_DEFAULTS.events, ...drop(rule) } as ResolvedZoneRule;
    case 'line': return { ...base, direction: RULE_DEFAULTS.direction, ...drop(rule) } as ResolvedLineRule;
    default: return { ...base, ...drop(rule) } as ResolvedDwellRule;
  }
}

export const rulesConfigValidator = compileSchema(RulesConfigSchema);
export const DEFAULT_RULES_CONFIG: RulesConfig = rulesConfigValidator.defaults();
