/**
 * Shared command dispatcher for the three binaries. `edge-agent detect ...` loads
 * `commands/detect.ts`, `fleetctl model import ...` loads `commands/model-import.ts`: each command is
 * its own module exporting `command: CliCommand`, so adding one touches no shared file.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describeError, EdgeFleetError } from '../util/errors.js';

export interface CliCommand {
  /** One line for the command list. */
  summary: string;
  /** Full usage text printed by --help. */
  usage: string;
  /** Runs the command; returns the process exit code. `--json` output goes to stdout. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends EdgeFleetError {
  constructor(message: string) {
    super('E_USAGE', message);
  }
}

/** Exit codes shared by every binary. */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3, input: 4, model: 5, capture: 6 } as const;

/** node:util parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes: an unknown or malformed option. */
function isUsageError(code: string | undefined): boolean {
  return code === 'E_USAGE' || (code?.startsWith('ERR_PARSE_ARGS_') ?? false);
}

export function exitCodeFor(err: unknown): number {
  const code = (err as { code?: string }).code;
  if (isUsageError(code)) return EXIT.usage;
  switch (code) {
    case 'E_CONFIG': return EXIT.config;
    case 'E_INPUT': return EXIT.input;
    case 'E_MODEL': case 'E_MODEL_OUTPUT': return EXIT.model;
    case 'E_CAPTURE': return EXIT.capture;
    default: return EXIT.failure;
  }
}

/**
 * Command modules by name, for release bundles: esbuild cannot follow a directory read at run time,
 * so scripts/build.ts generates an entry that registers every `commands/*.ts` with a literal
 * `import()` (which esbuild bundles) before the binary's main module runs. From sources nothing is
 * registered and the directory is read as before.
 */
export type CommandTable = Record<string, () => Promise<{ command?: CliCommand }>>;
const registered = new Map<string, CommandTable>();

export function registerCommands(binary: string, table: CommandTable): void {
  registered.set(binary, table);
}

interface CommandSource {
  names(): Promise<string[]>;
  load(name: string): Promise<{ command?: CliCommand }> | undefined;
}

function directorySource(dir: string): CommandSource {
  return {
    names: async () => {
      const { readdirSync } = await import('node:fs');
      return [...new Set(readdirSync(dir).filter((n) => /\.(ts|js)$/.test(n) && !n.endsWith('.d.ts')).map((n) => n.replace(/\.(ts|js)$/, '')))];
    },
    load: (name) => {
      const file = findModule(dir, name);
      return file ? (import(pathToFileURL(file).href) as Promise<{ command?: CliCommand }>) : undefined;
    },
  };
}

function tableSource(table: CommandTable): CommandSource {
  return { names: () => Promise.resolve(Object.keys(table)), load: (name) => (Object.hasOwn(table, name) ? table[name]() : undefined) };
}

let outputGuarded = false;

/**
 * A reader that goes away early (`fleetctl rollout status --json | head -1`) is not the command's
 * failure. Node ignores SIGPIPE, so the next write fails with EPIPE, and as an unhandled 'error' event
 * that killed the command with a stack trace and exit code 1 after its work was done (a quantized model
 * written, a rollout created). Output to a reader that is gone is dropped and the command ends with
 * its own exit code; any other stream error still ends the process.
 */
function dropOutputToGoneReader(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err; });
  }
}

export async function dispatch(opts: { binary: string; commandsDir: string; groups?: string[]; argv: string[]; version: string }): Promise<number> {
  const { binary, argv } = opts;
  dropOutputToGoneReader();
  const table = registered.get(binary);
  const commandsDir = table ? tableSource(table) : directorySource(opts.commandsDir);
  const groups = new Set(opts.groups ?? []);
  const json = argv.includes('--json');
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    // `version` is answered here, not by a command module, so the listing adds it itself.
    const versionLine = `  ${'version'.padEnd(22)} print the ${binary} version (also --version)\n`;
    process.stdout.write(`usage: ${binary} <command> [options]\n\ncommands:\n${await listCommands(commandsDir, groups)}${versionLine}\nRun '${binary} <command> --help' for a command's options; every command takes --json.\n`);
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  if (argv[0] === 'version' || argv[0] === '--version') {
    process.stdout.write(json ? `${JSON.stringify({ binary, version: opts.version, node: process.version })}\n` : `${binary} ${opts.version}\n`);
    return EXIT.ok;
  }
  // A group alone (`fleetctl model`, `fleetctl model --help`): its commands.
  if (groups.has(argv[0]) && (argv[1] === undefined || argv[1].startsWith('-'))) {
    const help = argv[1] === '--help' || argv[1] === '-h';
    (help ? process.stdout : process.stderr).write(`usage: ${binary} ${argv[0]} <command> [options]\n\ncommands:\n${await listCommands(commandsDir, groups, `${argv[0]}-`)}`);
    return help ? EXIT.ok : EXIT.usage;
  }
  const grouped = groups.has(argv[0]) && argv[1] !== undefined && !argv[1].startsWith('-');
  const name = grouped ? `${argv[0]}-${argv[1]}` : argv[0];
  const rest = argv.slice(grouped ? 2 : 1);
  const loading = /^[a-z0-9-]+$/.test(name) ? commandsDir.load(name) : undefined;
  if (!loading) {
    process.stderr.write(`${binary}: unknown command '${argv.slice(0, grouped ? 2 : 1).join(' ')}'. Commands:\n${await listCommands(commandsDir, groups)}`);
    return EXIT.usage;
  }
  const { command } = (await loading) as { command: CliCommand };
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage.trim()}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const d = describeError(err);
    if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: d })}\n`);
    process.stderr.write(`${binary} ${spelled(name, groups)}: ${d.message}${isUsageError(d.code) ? `\n\n${command.usage.trim()}` : ''}\n`);
    return exitCodeFor(err);
  }
}

// The tests' transpiled tree (scripts/build-tests.ts) holds each command as .js beside a link to its
// .ts: a dispatcher loads the kind it is itself (a .js module cannot import .ts without a loader).
const OWN_EXT = import.meta.url.endsWith('.js') ? ['.js', '.ts'] : ['.ts', '.js'];

function findModule(dir: string, name: string): string | undefined {
  for (const ext of OWN_EXT) {
    const p = join(dir, name + ext);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** How a command is typed: `model-quantize` is `model quantize` in a group, `check-config` is itself. */
function spelled(name: string, groups: ReadonlySet<string>): string {
  return groups.has(name.split('-')[0]) ? name.replace('-', ' ') : name;
}

async function listCommands(source: CommandSource, groups: ReadonlySet<string>, prefix = ''): Promise<string> {
  const lines: string[] = [];
  for (const name of (await source.names()).filter((n) => n.startsWith(prefix)).sort()) {
    const { command } = (await source.load(name)) ?? {};
    if (command) lines.push(`  ${spelled(name, groups).padEnd(22)} ${command.summary}`);
  }
  return `${lines.join('\n')}\n`;
}

export function commandsDirOf(metaUrl: string): string {
  return join(fileURLToPath(new URL('.', metaUrl)), 'commands');
}
