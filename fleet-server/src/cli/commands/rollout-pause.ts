import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { rolloutAction, SERVER_USAGE } from '../rollout-client.js';

export const command: CliCommand = {
  summary: 'pause a running rollout: no further devices are assigned until it is resumed',
  usage: `usage: fleetctl rollout pause ID [--server URL] [--token TOKEN] [--json]

${SERVER_USAGE}`,
  run: (argv) => rolloutAction(argv, 'pause'),
};
