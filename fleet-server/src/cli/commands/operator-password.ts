/**
 * `fleetctl operator password [--username U] [--config F | --data-dir D]`: sets a new operator
 * password in the registry (printed once) and ends that operator's sessions. `operator.password` in
 * the config is read only on the very first start, so without this a lost or leaked password could
 * not be changed.
 */
import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { InputError } from '../../../../agent/src/util/errors.js';
import { randomToken } from '../../db/credentials.js';
import { withRegistry } from '../device-registry.js';

export const command: CliCommand = {
  summary: 'set a new operator password (printed once) and end that operator\'s sessions',
  usage: `usage: fleetctl operator password [--username NAME] [--config FILE | --data-dir DIR] [--json]

  --username NAME  the operator (default admin); created when absent
  --config FILE    fleet server config: work on its SQLite registry directly
  --data-dir DIR   same, with only the data directory (/var/lib/edge-fleet under systemd)

Run it as the server's user (sudo -u edge-fleet fleetctl ...). Works with the server running or not;
the operator's tokens stop working at once, open dashboard streams at their next event or heartbeat.`,
  async run(argv) {
    const { values: v } = parseArgs({ args: argv, options: {
      username: { type: 'string', default: 'admin' }, config: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' },
    } });
    const username = v.username!;
    if (!/^[^\s]{1,64}$/.test(username)) throw new InputError(`Expected --username of 1-64 characters without spaces but received ${JSON.stringify(username)}`);
    const password = randomToken(12);
    const { created, revoked } = withRegistry({ config: v.config, dataDir: v['data-dir'], create: false }, (reg) => {
      const existed = reg.operators.exists(username);
      reg.operators.setPassword(username, password);
      return { created: !existed, revoked: reg.operators.revokeSessions(username) };
    });
    process.stdout.write(v.json
      ? `${JSON.stringify({ ok: true, username, password, created, sessionsEnded: revoked })}\n`
      : `operator ${username} ${created ? 'created' : 'password changed'}; ${revoked} session(s) ended\n  password: ${password}\n(shown once: it is stored hashed)\n`);
    return 0;
  },
};
