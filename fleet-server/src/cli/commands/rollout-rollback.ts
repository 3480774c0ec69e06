import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { rolloutAction, SERVER_USAGE } from '../rollout-client.js';

export const command: CliCommand = {
  summary: 'roll a rollout back: every device it reached gets the version it ran before',
  usage: `usage: fleetctl rollout rollback ID [--server URL] [--token TOKEN] [--json]

${SERVER_USAGE}`,
  run: (argv) => rolloutAction(argv, 'rollback'),
};
