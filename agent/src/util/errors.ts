/**
 * Every error the project raises is an EdgeFleetError with a stable `code` and a message that says
 * what was expected, what came, and what to do. Never throw strings.
 */
export class EdgeFleetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A ConfigError listing every issue, one line each: "<what> is invalid (N problems):\n  /path: expected X but received Y". */
export function invalidConfig(what: string, issues: ConfigIssue[], options?: { cause?: unknown }): ConfigError {
  const lines = issues.map((i) => `  ${i.path || '/'}: expected ${i.expected} but received ${i.received}`);
  return new ConfigError(`${what} is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`, issues, options);
}

export class ConfigError extends EdgeFleetError {
  /** One entry per invalid field: JSON pointer, what was expected, what was given. */
  readonly issues: ConfigIssue[];
  constructor(message: string, issues: ConfigIssue[] = [], options?: { cause?: unknown }) {
    super('E_CONFIG', message, options);
    this.issues = issues;
  }
}

export interface ConfigIssue {
  path: string;
  expected: string;
  received: string;
}

export class ModelError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_MODEL', message, options);
  }
}

/**
 * A model run whose outputs hold NaN where the decoder reads them (scores, boxes): the run is broken
 * (an FP16 overflow, a damaged engine or weights), and "nothing found" would be a lie. E_MODEL_OUTPUT.
 */
export class ModelOutputError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_MODEL_OUTPUT', message, options);
  }
}

export class CaptureError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CAPTURE', message, options);
  }
}

export class InputError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_INPUT', message, options);
  }
}

/** Short, JSON-safe description of any thrown value, for logs and error replies. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof EdgeFleetError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: (err as NodeJS.ErrnoException).code ?? 'E_INTERNAL', message: err.message };
  return { code: 'E_INTERNAL', message: String(err) };
}

/** sharp-style argument description: `Expected positive integer for width but received -3`. */
export function received(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  try {
    const s = JSON.stringify(value);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(value);
  }
}
