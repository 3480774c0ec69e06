/**
 * Decoding of MQTT payloads where they arrive: size bound, UTF-8 JSON, schema. Never throws; a
 * failure names the reason (`oversized`, `json`, `schema`) so that receivers count drops by kind.
 */
import type { TSchema, Static } from '@sinclair/typebox';
import { compileSchema, type Validator } from '../util/schema.js';
import type { ConfigIssue } from '../util/errors.js';
import {
  AckSchema, AlertSchema, CmdResultSchema, CmdSchema, DesiredSchema, MAX_PAYLOAD_BYTES, ReportedSchema, StateSchema, TelemetrySchema,
} from './payloads.js';
import type { TopicKind } from './topics.js';

export type DecodeFailure = 'oversized' | 'json' | 'schema';
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: DecodeFailure; detail: string; issues?: ConfigIssue[] };

export const PAYLOAD_SCHEMAS = {
  state: StateSchema,
  telemetry: TelemetrySchema,
  alert: AlertSchema,
  ack: AckSchema,
  desired: DesiredSchema,
  reported: ReportedSchema,
  cmd: CmdSchema,
  'cmd/res': CmdResultSchema,
} satisfies Record<TopicKind, TSchema>;

type SchemaOf<K extends TopicKind> = (typeof PAYLOAD_SCHEMAS)[K];
export type PayloadOf<K extends TopicKind> = Static<SchemaOf<K>>;

const validators = new Map<TopicKind, Validator<TSchema>>();
function validatorFor(kind: TopicKind): Validator<TSchema> {
  let v = validators.get(kind);
  if (!v) {
    v = compileSchema(PAYLOAD_SCHEMAS[kind]);
    validators.set(kind, v);
  }
  return v;
}

/**
 * Deepest nesting of arrays and objects a payload may have. Ours go about 6 levels deep (a desired
 * state's manifest decoder); schemas that allow extra properties (`reported`) would otherwise store
 * whatever comes, and SQLite's JSON functions fail a whole query on one value nested past 1000
 * levels (a stored report once stopped every rollout's tick).
 */
export const MAX_PAYLOAD_DEPTH = 32;

/** Nesting depth of a parsed JSON value (iterative: no recursion on hostile input). */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return max;
}

export function decodePayload<K extends TopicKind>(kind: K, payload: Buffer | Uint8Array | string): Decoded<PayloadOf<K>> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  const max = MAX_PAYLOAD_BYTES[kind];
  if (size > max) return { ok: false, reason: 'oversized', detail: `expected at most ${max} bytes for ${kind} but received ${size}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'json', detail: `expected JSON for ${kind}: ${(err as Error).message}` };
  }
  const depth = jsonDepth(json);
  if (depth > MAX_PAYLOAD_DEPTH) return { ok: false, reason: 'schema', detail: `${kind} payload: expected JSON nested at most ${MAX_PAYLOAD_DEPTH} levels deep but received ${depth}` };
  const r = validatorFor(kind).check(json);
  if (!r.ok) {
    const first = r.issues[0];
    return { ok: false, reason: 'schema', detail: `${kind} payload: ${first ? `${first.path || '/'} expected ${first.expected} but received ${first.received}` : 'invalid'}`, issues: r.issues };
  }
  return { ok: true, value: r.value as PayloadOf<K> };
}

export function encodePayload<K extends TopicKind>(_kind: K, value: PayloadOf<K>): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
