import type { CliCommand } from '../dispatch.js';
import { parseCommandArgs } from '../args.js';
import { loadAgentConfig } from '../../config/load.js';
import { ConfigError } from '../../util/errors.js';
import { loadBoard } from '../../config/boards.js';
import { AgentConfig } from '../../config/schema.js';
import { restartPointers } from '../../service/config-reload.js';

export const command: CliCommand = {
  summary: 'validate an agent config file and name every wrong field',
  usage: `usage: edge-agent check-config CONFIG.json [--json]

Checks the file against the agent schema (configs/schema/agent.schema.json). Every wrong field is
listed with what was expected and what was given. Exit code 0 when valid, 3 when not.`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, { config: { type: 'string' } }, { positionals: true });
    const path = values.config ?? positionals[0];
    if (!path) throw new ConfigError('missing config file: edge-agent check-config CONFIG.json');
    try {
      const cfg = await loadAgentConfig(path);
      await loadBoard(cfg.board);
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, config: path, cameras: cfg.cameras.length, restartFields: restartPointers(AgentConfig) })}\n`);
      else process.stdout.write(`${path}: valid (${cfg.cameras.length} camera${cfg.cameras.length === 1 ? '' : 's'}, model ${cfg.detector.model})\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, config: path, error: err.message.split('\n')[0], issues: err.issues })}\n`);
      else process.stderr.write(`${err.message}\n`);
      return 3;
    }
  },
};
