/**
 * Reads and validates an agent config file. Relative paths in it (model, source file, output)
 * are resolved against the config file's directory, so a config travels with its assets.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { agentConfigValidator, type AgentConfig } from './schema.js';
import { ConfigError, invalidConfig, type ConfigIssue } from '../util/errors.js';
import { loadBoard } from './boards.js';
import { crossFieldIssues } from './cross-checks.js';
import { parseJsonText } from './json-text.js';
import { droppedClassIssues, knownLabels, unknownLabelIssues } from './labels.js';
import { moduleLogger } from '../util/log.js';

/** A config problem that does not stop the agent; `message` says what it costs and what to do. */
export interface ConfigWarning extends ConfigIssue {
  message: string;
}

export interface LoadAgentConfigOptions {
  /** Receives each warning (check-config prints them); by default they are logged (module "config"), at start and at each reload. */
  onWarning?: (warning: ConfigWarning) => void;
}

export async function loadAgentConfig(path: string, opts: LoadAgentConfigOptions = {}): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}. ` +
      'Give the path of an agent JSON config (see configs/agent.example.json)');
  }
  const raw = parseJsonText(text, `Config file ${path}`);
  const cfg = resolvePaths(agentConfigValidator.parse(raw, `config ${path}`), dirname(resolve(path)));
  const { known, issues: metadataIssues } = await knownLabels(cfg);
  const unknown = known ? unknownLabelIssues(cfg, known) : [];
  // With ota, a class that no model on the box has yet may come with a model rolled out later: the
  // config is the one that must be in place for it. Refusing it stopped the agent at start (a restart
  // loop), so the OTA that brings the model never arrived. Without ota, nothing can add a label.
  const warnings = cfg.ota ? unknown.map((i) => unknownWithOta(i)) : [];
  const issues = [...metadataIssues, ...crossFieldIssues(cfg), ...(cfg.ota ? [] : unknown), ...droppedClassIssues(cfg, cfg.ota ? undefined : known)];
  const onWarning = opts.onWarning ?? ((w: ConfigWarning) => moduleLogger('config').warn({ config: path, path: w.path, name: w.received }, w.message));
  for (const w of warnings) onWarning(w);
  if (issues.length) {
    throw invalidConfig(`config ${path}`, issues);
  }
  if (cfg.ota && !cfg.link) {
    throw new ConfigError(`config ${path} is invalid: "ota" needs "link" (model updates arrive over the fleet's MQTT broker); add a link section or remove ota`,
      [{ path: '/link', expected: 'a link section when ota is set', received: 'nothing' }]);
  }
  // The board preset's providers when the config names none (a jetson-orin box ran on the CPU: the
  // schema's default ["cpu"] always won).
  const given = (raw as { detector?: { providers?: unknown } } | null)?.detector?.providers;
  if (given === undefined && cfg.board) {
    const board = await loadBoard(cfg.board);
    const bad = board.providers.filter((p) => !PROVIDERS.includes(p));
    if (bad.length) throw new ConfigError(`board preset ${cfg.board} lists providers ${bad.join(', ')}, which the agent does not know (${PROVIDERS.join(', ')}); fix the preset or set detector.providers`);
    cfg.detector.providers = board.providers as AgentConfig['detector']['providers'];
  }
  return cfg;
}

const PROVIDERS: readonly string[] = ['cpu', 'cuda', 'tensorrt'];

function unknownWithOta(issue: ConfigIssue): ConfigWarning {
  return {
    ...issue,
    message: `${issue.path}: expected ${issue.expected} but received ${issue.received}; accepted because ota is set, ` +
      'but nothing of that class is detected until a model that has it is installed over the air (a typo never will be)',
  };
}

export function resolvePaths(cfg: AgentConfig, baseDir: string): AgentConfig {
  const abs = (p: string) => (isAbsolute(p) || p === '-' ? p : resolve(baseDir, p));
  cfg.detector.model = abs(cfg.detector.model);
  cfg.stateDir = abs(cfg.stateDir);
  if (cfg.output.ndjson) cfg.output.ndjson = abs(cfg.output.ndjson);
  for (const cam of cfg.cameras) if (cam.source.kind === 'file') cam.source.path = abs(cam.source.path);
  if (cfg.link?.caFile) cfg.link.caFile = abs(cfg.link.caFile);
  if (cfg.link?.secretFile) cfg.link.secretFile = abs(cfg.link.secretFile);
  if (cfg.ota) cfg.ota.publicKeyFile = abs(cfg.ota.publicKeyFile);
  resolvePrivacyPaths(cfg.privacy, baseDir);
  return cfg;
}

/** The privacy section's paths, relative to the config file's directory (also for `redact --config`). */
export function resolvePrivacyPaths(privacy: AgentConfig['privacy'], baseDir: string): AgentConfig['privacy'] {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  privacy.faces.modelPath = abs(privacy.faces.modelPath);
  if (privacy.plates.textModelPath) privacy.plates.textModelPath = abs(privacy.plates.textModelPath);
  privacy.rawRing.dir = abs(privacy.rawRing.dir);
  return privacy;
}
