import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { rolloutAction, SERVER_USAGE } from '../rollout-client.js';

export const command: CliCommand = {
  summary: 'resume a rollout paused by an operator (a rollout stopped by its gate cannot be resumed)',
  usage: `usage: fleetctl rollout resume ID [--server URL] [--token TOKEN] [--json]

${SERVER_USAGE}`,
  run: (argv) => rolloutAction(argv, 'resume'),
};
