/** node:util parseArgs with `--json` always accepted (its ERR_PARSE_ARGS_* errors are usage errors in dispatch). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './dispatch.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<T extends Options>(argv: string[], options: T, opts: { positionals?: boolean } = {}) {
  return parseArgs({ args: argv, options: { ...options, json: { type: 'boolean', default: false } }, allowPositionals: opts.positionals ?? false, strict: true });
}

export function requireOption(value: string | undefined, name: string): string {
  if (!value) throw new UsageError(`missing --${name}`);
  return value;
}

/** What a numeric option accepts; `what` completes "Expected --flag to be …". */
export interface NumberRule { what: string; integer?: boolean; min?: number; above?: number; max?: number }
export const POSITIVE_INT: NumberRule = { what: 'a positive integer', integer: true, min: 1 };
export const NON_NEGATIVE_INT: NumberRule = { what: 'a non-negative integer', integer: true, min: 0 };
export const NON_NEGATIVE: NumberRule = { what: 'a number ≥ 0', min: 0 };
export const TCP_PORT: NumberRule = { what: 'a TCP port (0 = any free one)', integer: true, min: 0, max: 65535 };

// Plain decimal notation only: Number() also reads '' and ' ' as 0, '0x10' as 16 and '1e400' as Infinity.
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** `raw` (the option's text, undefined when not given) as a number that satisfies `rule`, or a usage error naming `flag`. */
export function numberOption(flag: string, raw: string | undefined, rule: NumberRule): number | undefined {
  if (raw === undefined) return undefined;
  const v = DECIMAL.test(raw) ? Number(raw) : NaN;
  const ok = Number.isFinite(v) && (!rule.integer || Number.isInteger(v))
    && (rule.min === undefined || v >= rule.min) && (rule.above === undefined || v > rule.above) && (rule.max === undefined || v <= rule.max);
  if (!ok) throw new UsageError(`Expected ${flag} to be ${rule.what} but received ${JSON.stringify(raw)}`);
  return v;
}
