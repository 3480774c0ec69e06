/**
 * One TypeBox schema is the source of a TypeScript type (Static<>), its defaults and its JSON Schema.
 * `compileSchema` wraps ajv (allErrors, defaults applied, unknown keys refused by the schemas
 * themselves through additionalProperties: false) and turns its errors into issues that name the
 * field, what was expected and what was given.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Type, type Static, type TSchema, type TObject, type TUnion } from '@sinclair/typebox';
import { invalidConfig, received, type ConfigIssue } from './errors.js';
import { maskUrlCredentials } from './mask-url.js';

// strictNumbers: `strict: false` also turns it off, and then NaN and Infinity pass as numbers; JSON
// turns them into null, which the receiver refuses, so an alert with a NaN box was resent forever.
const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: false, strict: false, strictNumbers: true, discriminator: true, verbose: true });

/**
 * A union told apart by one literal field (`kind`, `type`). ajv applies defaults inside `oneOf`
 * branches only with its `discriminator` keyword, and reports one clear error for an unknown tag
 * instead of one per branch; TypeBox's plain Union (anyOf) would do neither.
 */
export function Discriminated<T extends TObject[]>(key: string, branches: [...T], options: { description?: string } = {}) {
  return Type.Unsafe<Static<TUnion<T>>>({
    ...options,
    type: 'object',
    required: [key],
    discriminator: { propertyName: key },
    oneOf: branches,
  });
}

export interface Validator<T extends TSchema> {
  schema: T;
  /** Returns the value with defaults applied, or the list of issues. Never throws. */
  check(value: unknown): { ok: true; value: Static<T> } | { ok: false; issues: ConfigIssue[] };
  /** Returns the value with defaults applied, or throws a ConfigError naming every wrong field. */
  parse(value: unknown, what: string): Static<T>;
  /**
   * The defaults of an empty object, as `parse({})` gives them, without compiling the validator:
   * module constants built with parse({}) compiled three validators at every import of the agent's
   * pipeline, ~140 ms of each process start. Object properties only (no oneOf branch is entered);
   * checked equal to parse({}) for the schemas that use it (test/unit/schema-defaults.test.ts).
   */
  defaults(): Static<T>;
}

export function compileSchema<T extends TSchema>(schema: T): Validator<T> {
  // Compiled at first use, not at import: ajv's code generation took ~0.3 s of every process start
  // (the CLIs import about twenty validators and use one or two).
  let fn: ValidateFunction | undefined;
  const check = (value: unknown) => {
    fn ??= ajv.compile(withSectionDefaults(schema));
    // ajv applies defaults in place; work on a copy so callers keep what they passed.
    const copy = value === undefined ? value : structuredClone(value);
    if (fn(copy)) return { ok: true as const, value: copy as Static<T> };
    return { ok: false as const, issues: toIssues(fn.errors ?? [], copy) };
  };
  return {
    schema,
    check,
    parse(value, what) {
      const r = check(value);
      if (r.ok) return r.value;
      throw invalidConfig(what, r.issues);
    },
    defaults: () => applyDefaults(withSectionDefaults(schema) as Record<string, unknown>, {}) as Static<T>,
  };
}

/** ajv's useDefaults on object properties: a missing property takes a copy of its default, then its own properties' defaults. */
function applyDefaults(s: Record<string, unknown>, value: unknown): unknown {
  const v = value === undefined && 'default' in s ? structuredClone(s.default) : value;
  const props = s.properties as Record<string, Record<string, unknown>> | undefined;
  if (s.type === 'object' && props && v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const [k, p] of Object.entries(props)) {
      const d = applyDefaults(p, o[k]);
      if (d !== undefined) o[k] = d;
    }
  }
  return v;
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/**
 * A password-like field (password, passwd, pwd; not passwordFile, a path), whose value an issue never shows.
 * A misspelt one is caught too (`pasword`, unknown to the schema, would be printed whole otherwise).
 */
const SECRET_FIELD = /^(?!.*file$).*(pas+w|pwd)/i;

/**
 * What an issue shows of a value: a password-like field as `***`, and URLs without their
 * credentials, masked before `received` shortens the text (a cut could drop the `@` the mask needs).
 * The message reaches check-config's output and the journal: a camera URL that fails its pattern
 * (`rtps://admin:secret@…`) showed the password there.
 */
function shown(value: unknown, path: string): string {
  const field = path.split('/').at(-1) ?? '';
  if (value !== undefined && SECRET_FIELD.test(field.replace(/~1/g, '/').replace(/~0/g, '~'))) return '***';
  return received(redacted(value));
}

function redacted(value: unknown): unknown {
  if (typeof value === 'string') return maskUrlCredentials(value);
  if (Array.isArray(value)) return value.map(redacted);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '***' : redacted(v)]));
  }
  return value;
}

function toIssues(errors: ErrorObject[], root: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  // A union of literals (TypeBox Union of Literal) fails as one error per branch plus an anyOf:
  // report it once, listing the allowed values.
  const literalUnions = new Map<string, unknown[]>();
  for (const e of errors) {
    const branches = e.keyword === 'anyOf' ? (e.schema as Array<{ const?: unknown }>) : undefined;
    if (Array.isArray(branches) && branches.every((b) => b && 'const' in b)) literalUnions.set(e.instancePath, branches.map((b) => b.const));
  }
  // anyOf/oneOf produce one error per branch plus a summary; keep the summary and the leaf errors
  // that are not mere branch mismatches of a union.
  for (const e of errors) {
    let path = e.instancePath;
    let expected: string;
    let got: string = shown(valueAt(root, e.instancePath), e.instancePath);
    const literals = literalUnions.get(e.instancePath);
    if (literals && (e.keyword === 'const' || e.keyword === 'anyOf')) {
      if (e.keyword === 'const') continue;
      expected = `one of ${literals.map((v) => JSON.stringify(v)).join(', ')}`;
    } else switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        path = `${e.instancePath}/${extra}`;
        expected = `no such key (unknown field "${extra}"; check its spelling against configs/schema)`;
        got = shown(valueAt(root, path), path);
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        path = `${e.instancePath}/${missing}`;
        expected = 'a value (this field is required)';
        got = 'nothing';
        break;
      }
      case 'type': expected = `${(e.params as { type: string }).type}`; break;
      case 'enum': expected = `one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`; break;
      case 'const': expected = JSON.stringify((e.params as { allowedValue: unknown }).allowedValue); break;
      case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
        expected = `a number ${e.message ?? ''}`.trim(); break;
      case 'anyOf': case 'oneOf': expected = 'one of the allowed forms (see the schema)'; break;
      case 'maxItems': case 'minItems': {
        // A list's own description says what it allows and why (cameras: at most MAX_CAMERAS); given: the count, not the items.
        const limit = (e.params as { limit: number }).limit;
        const why = (e.parentSchema as { description?: string } | undefined)?.description;
        expected = why ?? `${e.keyword === 'maxItems' ? 'at most' : 'at least'} ${limit} item${limit === 1 ? '' : 's'}`;
        const value = valueAt(root, e.instancePath);
        if (Array.isArray(value)) got = `${value.length} items`;
        break;
      }
      case 'discriminator': {
        const p = e.params as { tag: string; tagValue?: unknown };
        path = `${e.instancePath}/${p.tag}`;
        const allowed = ((e.parentSchema as { oneOf?: Array<{ properties?: Record<string, { const?: unknown }> }> })?.oneOf ?? [])
          .map((b) => JSON.stringify(b.properties?.[p.tag]?.const)).join(', ');
        expected = `one of ${allowed}`;
        got = shown(valueAt(root, path), path);
        break;
      }
      default: expected = e.message ?? e.keyword;
    }
    const key = `${path}|${expected}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ path, expected, received: got });
  }
  return issues;
}

/**
 * The same schema with a `default` of its own, so that ajv fills a whole missing section (and then
 * the defaults inside it) instead of requiring the user to write `{}`.
 */
export function withDefault<T extends TSchema>(schema: T, value: unknown): T {
  return { ...schema, default: value } as T;
}

/**
 * Gives every nested object section whose fields all have defaults a `default: {}` of its own, so a
 * config may leave out any section (or part of one) that needs no value from the user. Works on a
 * copy: the TypeBox schema used for types and the generated JSON Schema keep their own form.
 */
export function withSectionDefaults<T>(schema: T): T {
  const copy = structuredClone(schema) as Record<string, unknown>;
  fill(copy);
  return copy as T;
}

/**
 * Walks the schema; returns true when the value may be left out because a default exists or can be
 * made. Only *required* object sections get a `default: {}`: an optional section stays absent
 * unless the user writes it (code tells "not given" from "given empty").
 */
function fill(s: Record<string, unknown>): boolean {
  for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
    const branches = s[key];
    if (Array.isArray(branches)) for (const b of branches) fill(b as Record<string, unknown>);
  }
  if (s.type === 'array' && s.items && typeof s.items === 'object') fill(s.items as Record<string, unknown>);
  const props = s.properties as Record<string, Record<string, unknown>> | undefined;
  if (s.type !== 'object' || !props) return 'default' in s;
  const required = new Set((s.required as string[] | undefined) ?? []);
  let allDefaulted = true;
  for (const [name, prop] of Object.entries(props)) {
    const defaultable = fill(prop);
    if (!required.has(name)) continue;
    if (!defaultable) allDefaulted = false;
    else if (!('default' in prop)) prop.default = {};
  }
  return 'default' in s || allDefaulted;
}
