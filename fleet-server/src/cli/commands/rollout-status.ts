import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { callApi } from '../device-registry.js';
import { renderStatus, SERVER_OPTIONS, SERVER_USAGE } from '../rollout-client.js';
import type { RolloutStatus } from '../../rollouts/rollout-engine.js';
import type { RolloutRecord } from '../../rollouts/rollout-store.js';

export const command: CliCommand = {
  summary: 'show a rollout (waves, per-device status and what each device reports) or list all rollouts',
  usage: `usage: fleetctl rollout status [ID] [--server URL] [--token TOKEN] [--json]

Without ID: every rollout with its state. With ID: totals, the gate's reason when paused, and one
line per device (wave, status, version it reports running, install phase, reason).
${SERVER_USAGE}`,
  async run(argv) {
    const p = parseArgs({ args: argv, allowPositionals: true, options: SERVER_OPTIONS });
    const id = p.positionals[0];
    if (!id) {
      const { items } = (await callApi(p.values.server, p.values.token, 'GET', '/api/rollouts')) as { items: RolloutRecord[] };
      if (p.values.json) process.stdout.write(`${JSON.stringify({ ok: true, items })}\n`);
      else for (const r of items) process.stdout.write(`${r.id}  ${r.model}@${r.version} → ${r.target}  ${r.state}  wave ${r.wave + 1}/${r.waves.length}${r.reason ? `  (${r.reason})` : ''}\n`);
      return 0;
    }
    const s = (await callApi(p.values.server, p.values.token, 'GET', `/api/rollouts/${encodeURIComponent(id)}`)) as RolloutStatus;
    process.stdout.write(p.values.json ? `${JSON.stringify({ ok: true, rollout: s })}\n` : renderStatus(s));
    return 0;
  },
};
