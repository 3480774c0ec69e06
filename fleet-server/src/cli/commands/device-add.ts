import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { UsageError } from '../../../../agent/src/cli/dispatch.js';
import { assertDeviceId } from '../../../../agent/src/protocol/index.js';
import { withRegistry, callApi } from '../device-registry.js';

export const command: CliCommand = {
  summary: 'Register a device and print its MQTT credentials (the secret is shown once)',
  usage: `usage: fleetctl device add ID [--rotate] [--config FILE | --data-dir DIR | --server URL --token TOKEN] [--json]

  ID              1-64 letters, digits, '_' or '-'; it is the MQTT username and the topic level
  --rotate        the device exists: issue a new secret (the old one stops working)
  --config FILE   fleet server config: work on its SQLite registry directly (and resync mosquitto)
  --data-dir DIR  same, with only the data directory
  --server URL    use a running fleet server's HTTP API instead (token from POST /api/login or EF_TOKEN)

The secret is stored only as a PBKDF2 hash; copy it into the agent's credentials now.`,
  async run(argv) {
    const p = parseArgs({ args: argv, allowPositionals: true, options: {
        rotate: { type: 'boolean' }, config: { type: 'string' }, 'data-dir': { type: 'string' }, server: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' },
      } });
    const id = p.positionals[0];
    if (!id || p.positionals.length > 1) throw new UsageError(`Expected exactly one device ID but received ${p.positionals.length}`);
    assertDeviceId(id);
    const v = p.values;
    let secret: string;
    if (v.server) {
      const r = await callApi(v.server, v.token, 'POST', '/api/devices', { id, rotate: v.rotate ?? false }) as { secret: string };
      secret = r.secret;
    } else {
      secret = withRegistry({ config: v.config, dataDir: v['data-dir'], create: true }, (reg) => {
        const r = reg.devices.add(id, { rotate: v.rotate });
        reg.syncMosquitto();
        return r.secret;
      });
    }
    process.stdout.write(v.json
      ? `${JSON.stringify({ ok: true, id, username: id, secret })}\n`
      : `device ${id} ${v.rotate ? 'secret rotated' : 'added'}\n  username: ${id}\n  secret:   ${secret}\n(shown once: it is stored hashed)\n`);
    // Written beside a running server, the registry does not reach its aedes broker: a connection made
    // with the old secret stays until it reconnects. Through the API (--server) the server ends it.
    if (v.rotate && !v.server) process.stderr.write(`note: a running fleet server with its embedded aedes broker keeps ${id}'s open connection until it reconnects; rotate with --server URL to end it now (mosquitto drops it on reload)\n`);
    return 0;
  },
};
