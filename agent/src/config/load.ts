/**
 * Reads and validates an agent config file. Relative paths in it (model, source file, output)
 * are resolved against the config file's directory, so a config travels with its assets.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { agentConfigValidator, type AgentConfig } from './schema.js';
import { ConfigError, invalidConfig } from '../util/errors.js';
import { loadBoard } from './boards.js';
import { crossFieldIssues } from './cross-checks.js';
import { parseJsonText } from './json-text.js';
import { droppedClassIssues, knownLabels, unknownLabelIssues } from './labels.js';

export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}. ` +
      'Give the path of an agent JSON config (see configs/agent.example.json)');
  }
  const raw = parseJsonText(text, `Config file ${path}`);
  const cfg = resolvePaths(agentConfigValidator.parse(raw, `config ${path}`), dirname(resolve(path)));
  const known = await knownLabels(cfg);
  const issues = [...crossFieldIssues(cfg), ...(known ? unknownLabelIssues(cfg, known) : []), ...droppedClassIssues(cfg, known)];
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
