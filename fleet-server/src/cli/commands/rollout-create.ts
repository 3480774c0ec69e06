import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { UsageError } from '../../../../agent/src/cli/dispatch.js';
import { numberOption } from '../../../../agent/src/cli/args.js';
import { callApi } from '../device-registry.js';
import { SERVER_OPTIONS, SERVER_USAGE } from '../rollout-client.js';
import type { RolloutRecord } from '../../rollouts/rollout-store.js';

const GATE_KEYS = ['maxFailures', 'waveTimeoutMs', 'healthWindowMs'];

export const command: CliCommand = {
  summary: 'start a staged rollout of a model version in gated waves (idempotent: the same rollout twice is one)',
  usage: `usage: fleetctl rollout create --model NAME@VERSION --target all|group:G|devices:ID,ID,...
         [--waves 5,25,100] [--gate maxFailures=0,waveTimeoutMs=900000,healthWindowMs=30000]
         [--role detector] [--platform onnx-cpu] [--server URL] [--token TOKEN] [--json]

  --waves      cumulative percentages of the target, the last 100; a wave starts only when every
               device of the previous waves committed the version after its health window
  --gate       maxFailures: devices allowed to fail (refuse, roll back, time out) before the
               rollout pauses and rolls its wave back; waveTimeoutMs: silence that counts as a
               failure (default 15 min, 45 min for onnx-trt: its first load builds a TensorRT
               engine); healthWindowMs: health window each agent runs after the swap
  --platform   artifact target the devices run (onnx-cpu, onnx-trt, tflite, coreml)
${SERVER_USAGE}`,
  async run(argv) {
    const v = parseArgs({ args: argv, options: { model: { type: 'string' }, target: { type: 'string' }, waves: { type: 'string', default: '5,25,100' }, gate: { type: 'string' }, role: { type: 'string' }, platform: { type: 'string' }, ...SERVER_OPTIONS } }).values;
    const m = /^([A-Za-z0-9_.-]+)@([A-Za-z0-9_.+-]+)$/.exec(v.model ?? '');
    if (!m) throw new UsageError(`Expected --model NAME@VERSION but received ${JSON.stringify(v.model)}`);
    if (!v.target) throw new UsageError('Expected --target all, group:NAME or devices:ID,ID,...');
    const waves = v.waves.split(',').map((w) => numberOption('--waves', w, { what: 'comma-separated percentages (e.g. 5,25,100)', above: 0, max: 100 })!);
    const gate: Record<string, number> = {};
    for (const kv of (v.gate ?? '').split(',').filter(Boolean)) {
      const [k, val] = kv.split('=');
      if (!GATE_KEYS.includes(k) || val === undefined) throw new UsageError(`Expected --gate KEY=NUMBER with KEY one of ${GATE_KEYS.join(', ')} but received ${kv}`);
      gate[k] = numberOption(`--gate ${k}`, val, { what: 'a number' })!;
    }
    const body = { model: m[1], version: m[2], target: v.target, waves, gate, ...(v.role ? { role: v.role } : {}), ...(v.platform ? { platform: v.platform } : {}) };
    const r = (await callApi(v.server, v.token, 'POST', '/api/rollouts', body)) as { created: boolean; rollout: RolloutRecord };
    if (v.json) process.stdout.write(`${JSON.stringify({ ok: true, ...r })}\n`);
    else process.stdout.write(`${r.created ? 'created' : 'already exists (not doubled)'}: ${r.rollout.id} ${r.rollout.model}@${r.rollout.version} → ${r.rollout.target}, state ${r.rollout.state}\n`);
    return 0;
  },
};
