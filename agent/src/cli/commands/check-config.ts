import type { CliCommand } from '../dispatch.js';
import { parseCommandArgs } from '../args.js';
import { loadAgentConfig, type ConfigWarning } from '../../config/load.js';
import { existsSync } from 'node:fs';
import { ConfigError, invalidConfig, type ConfigIssue } from '../../util/errors.js';
import { metadataPathFor } from '../../model/metadata.js';
import { loadBoard } from '../../config/boards.js';
import { AgentConfig } from '../../config/schema.js';
import type { AgentConfig as AgentConfigT } from '../../config/schema.js';
import { restartPointers } from '../../service/config-reload.js';

/**
 * The files the agent will open, by field: a config that validates but names a model that is not
 * there passed check-config and then failed at start (exit 5) without naming the field.
 */
function missingFiles(cfg: AgentConfigT): ConfigIssue[] {
  const wanted: Array<[string, string | undefined, string]> = [
    ['/detector/model', cfg.detector.model, 'the detector model (its .meta.json beside it)'],
    ['/detector/model', cfg.detector.model ? metadataPathFor(cfg.detector.model) : undefined, 'the model metadata file beside the model'],
  ];
  if (cfg.link && cfg.privacy.enabled && cfg.privacy.faces.enabled) {
    wanted.push(['/privacy/faces/modelPath', cfg.privacy.faces.modelPath, 'the face model the privacy gate runs before any image leaves (set privacy.faces.modelPath)']);
    wanted.push(['/privacy/faces/modelPath', metadataPathFor(cfg.privacy.faces.modelPath), 'the face model\'s metadata file beside it']);
  }
  if (cfg.link?.caFile) wanted.push(['/link/caFile', cfg.link.caFile, 'the CA certificate the link pins']);
  if (cfg.ota) wanted.push(['/ota/publicKeyFile', cfg.ota.publicKeyFile, 'the fleet signing key (fleetctl key export)']);
  for (const [i, cam] of cfg.cameras.entries()) if (cam.source.kind === 'file') wanted.push([`/cameras/${i}/source/path`, cam.source.path, 'a video file']);
  return wanted.filter(([, p]) => p !== undefined && !existsSync(p)).map(([path, file, what]) => ({ path, expected: `an existing file: ${what}`, received: file! }));
}

/** A warning in --json as the issues are: path, expected, received. */
function issueOf(w: ConfigWarning): ConfigIssue {
  return { path: w.path, expected: w.expected, received: w.received };
}

export const command: CliCommand = {
  summary: 'validate an agent config file and name every wrong field',
  usage: `usage: edge-agent check-config CONFIG.json [--json]

Checks the file against the agent schema (configs/schema/agent.schema.json), the fields that must
agree, the class names (detector.labels, rules' classes) against the model's labels, and that the
files it names are there (models, metadata, signing key, video files). Every
wrong field is listed with what was expected and what was given. Exit code 0 when valid, 3 when not.
Warnings (with ota, a class that no model on the box has yet) are printed and leave the exit code 0.`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, { config: { type: 'string' } }, { positionals: true });
    const path = values.config ?? positionals[0];
    if (!path) throw new ConfigError('missing config file: edge-agent check-config CONFIG.json');
    const warnings: ConfigWarning[] = [];
    const warningLines = () => warnings.map((w) => `warning: ${w.message}\n`).join('');
    try {
      const cfg = await loadAgentConfig(path, { onWarning: (w) => warnings.push(w) });
      await loadBoard(cfg.board);
      const missing = missingFiles(cfg);
      if (missing.length) {
        throw invalidConfig(`config ${path}`, missing);
      }
      const warned = warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : '';
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, config: path, cameras: cfg.cameras.length, restartFields: restartPointers(AgentConfig), warnings: warnings.map(issueOf) })}\n`);
      else {
        process.stderr.write(warningLines());
        process.stdout.write(`${path}: valid (${cfg.cameras.length} camera${cfg.cameras.length === 1 ? '' : 's'}, model ${cfg.detector.model}${warned})\n`);
      }
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, config: path, error: err.message.split('\n')[0], issues: err.issues, warnings: warnings.map(issueOf) })}\n`);
      else process.stderr.write(`${err.message}\n${warningLines()}`);
      return 3;
    }
  },
};
