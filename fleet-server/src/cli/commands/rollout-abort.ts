import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { rolloutAction, SERVER_USAGE } from '../rollout-client.js';

export const command: CliCommand = {
  summary: 'abort a rollout: no further waves; devices keep the version they run',
  usage: `usage: fleetctl rollout abort ID [--server URL] [--token TOKEN] [--json]

${SERVER_USAGE}`,
  run: (argv) => rolloutAction(argv, 'abort'),
};
