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
