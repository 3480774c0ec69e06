import { pino, type Logger } from 'pino';

/**
 * One root logger per process; every module takes a child with `module` set. Secrets are redacted
 * at the logger so that no call site has to remember. Per-frame facts go to metrics, not here.
 */
let root: Logger | undefined;

export function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: process.env.EF_LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info'),
      redact: {
        paths: ['password', 'secret', '*.password', '*.secret', 'credentials', '*.credentials', 'token', '*.token'],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    }, pino.destination(2));
  }
  return root;
}

/** Applies the config's log level, unless EF_LOG_LEVEL is set: the environment (a unit drop-in, a shell) wins. */
export function setConfiguredLogLevel(level: string): void {
  rootLogger().level = process.env.EF_LOG_LEVEL ?? level;
}

export function moduleLogger(module: string): Logger {
  return rootLogger().child({ module });
}

export type { Logger };
