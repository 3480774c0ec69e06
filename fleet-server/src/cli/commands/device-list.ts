import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import type { DeviceRecord } from '../../db/devices.js';
import { withRegistry, callApi } from '../device-registry.js';

export const command: CliCommand = {
  summary: 'List registered devices: online, last seen, versions, platform, health, drift',
  usage: `usage: fleetctl device list [--config FILE | --data-dir DIR | --server URL --token TOKEN] [--json]`,
  async run(argv) {
    const v = parseArgs({ args: argv, options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, server: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } } }).values;
    const items: DeviceRecord[] = v.server
      ? ((await callApi(v.server, v.token, 'GET', '/api/devices')) as { items: DeviceRecord[] }).items
      : withRegistry({ config: v.config, dataDir: v['data-dir'], create: false }, (reg) => reg.devices.list());
    if (v.json) {
      process.stdout.write(`${JSON.stringify({ ok: true, items })}\n`);
      return 0;
    }
    const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
    process.stdout.write(`${'ID'.padEnd(24)} ${'ONLINE'.padEnd(7)} ${'LAST SEEN'.padEnd(25)} ${'AGENT'.padEnd(10)} ${'HEALTH'.padEnd(9)} DRIFT\n`);
    for (const d of items) {
      process.stdout.write(`${d.id.padEnd(24)} ${(d.online ? 'yes' : 'no').padEnd(7)} ${iso(d.lastSeenMs).padEnd(25)} ${(d.agentVersion ?? '-').padEnd(10)} ${(d.health?.status ?? '-').padEnd(9)} ${d.driftFlagged ? 'FLAGGED' : '-'}\n`);
    }
    return 0;
  },
};
