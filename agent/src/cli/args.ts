/** Thin wrapper over node:util parseArgs that turns its errors into UsageErrors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './dispatch.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<T extends Options>(argv: string[], options: T, opts: { positionals?: boolean } = {}) {
  try {
    return parseArgs({ args: argv, options: { ...options, json: { type: 'boolean', default: false } }, allowPositionals: opts.positionals ?? false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function requireOption(value: string | undefined, name: string): string {
  if (!value) throw new UsageError(`missing --${name}`);
  return value;
}
