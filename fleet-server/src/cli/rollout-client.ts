/**
 * Shared by the `fleetctl rollout ...` commands (not a command itself: it exports no `command`).
 * Rollouts run inside the fleet server (its engine writes desired states to the broker), so these
 * commands talk to its HTTP API: `--server URL` (default http://127.0.0.1:8080) and an operator
 * token (`--token` or EF_TOKEN, from POST /api/login).
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../../../agent/src/cli/dispatch.js';
import { callApi } from './device-registry.js';
import type { RolloutStatus } from '../rollouts/rollout-engine.js';
import type { RolloutRecord } from '../rollouts/rollout-store.js';

export const SERVER_OPTIONS = {
  server: { type: 'string' as const, default: 'http://127.0.0.1:8080' },
  token: { type: 'string' as const },
  json: { type: 'boolean' as const },
};

export const SERVER_USAGE = `  --server URL     fleet server HTTP API (default http://127.0.0.1:8080)
  --token TOKEN    operator token from POST /api/login (or set EF_TOKEN)
  --json           one JSON line`;

export function renderStatus(s: RolloutStatus): string {
  const lines = [
    `${s.id}  ${s.model}@${s.version} (${s.platform}) → ${s.target}  state ${s.state.toUpperCase()}  wave ${s.wave + 1}/${s.waves.length} (${s.waves.join('/')}%)`,
    ...(s.reason ? [`reason: ${s.reason}`] : []),
    `devices ${s.totals.devices}: succeeded ${s.totals.succeeded}, assigned ${s.totals.assigned}, failed ${s.totals.failed}, rolled back ${s.totals.rolledBack}, pending ${s.totals.pending}, never sent ${s.totals.notSent ?? 0}; running ${s.version} by their reports: ${s.totals.runningVersion}`,
    `${'DEVICE'.padEnd(24)} ${'WAVE'.padEnd(5)} ${'STATUS'.padEnd(12)} ${'RUNS'.padEnd(12)} ${'PHASE'.padEnd(12)} REASON`,
    ...s.devices.map((d) => `${d.deviceId.padEnd(24)} ${String(d.wave + 1).padEnd(5)} ${d.status.padEnd(12)} ${(d.reported.version ?? '-').padEnd(12)} ${(d.reported.phase ?? '-').padEnd(12)} ${d.reason ?? ''}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** pause | resume | abort | rollback ID */
export async function rolloutAction(argv: string[], action: 'pause' | 'resume' | 'abort' | 'rollback'): Promise<number> {
  const p = parseArgs({ args: argv, allowPositionals: true, options: SERVER_OPTIONS });
  const id = p.positionals[0];
  if (!id || p.positionals.length > 1) throw new UsageError(`Expected exactly one rollout ID (ro-...) but received ${p.positionals.length}`);
  const r = (await callApi(p.values.server, p.values.token, 'POST', `/api/rollouts/${encodeURIComponent(id)}/${action}`)) as { rollout: RolloutRecord };
  if (p.values.json) process.stdout.write(`${JSON.stringify({ ok: true, rollout: r.rollout })}\n`);
  else process.stdout.write(`${r.rollout.id}: ${r.rollout.state}${r.rollout.reason ? ` (${r.rollout.reason})` : ''}\n`);
  return 0;
}
