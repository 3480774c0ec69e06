import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { AgentConfig } from '../../agent/src/config/schema.js';
import { ConfigReloader, changedPointers, planReload, restartPointers } from '../../agent/src/service/config-reload.js';

const silent = pino({ level: 'silent' });

const base = {
  deviceId: 'cam-01',
  stateDir: '/var/lib/edge-agent',
  detector: { model: '/m/model.onnx', providers: ['cpu'], labels: ['person'] },
  cameras: [{ source: { kind: 'file', path: '/v.avi' }, rules: { rules: [] } }],
  schedule: { interval: 3 },
  log: { level: 'info' },
};

test('restart-only fields come from the agent schema (x-restart), live fields are the rest', () => {
  const r = restartPointers(AgentConfig);
  for (const p of ['/deviceId', '/stateDir', '/cameras/*/source', '/detector/model', '/detector/providers', '/detector/labels']) assert.ok(r.includes(p), `${p} needs a restart`);
  // Camera rules and the score threshold reload live (AgentRunner.reconfigure).
  assert.ok(!r.some((p) => p.startsWith('/cameras/*/rules')));
  assert.ok(!r.includes('/detector/scoreThreshold'));
  assert.ok(!r.some((p) => p.startsWith('/log')));
});

test('a reload plan splits changed leaves into live and restart-required', () => {
  const next = structuredClone(base);
  next.log.level = 'debug';
  (next.detector as { scoreThreshold?: number }).scoreThreshold = 0.6;
  next.detector.model = '/m/other.onnx';
  next.cameras[0].source.path = '/w.avi';
  const plan = planReload(AgentConfig, base, next);
  assert.deepEqual(plan.live.sort(), ['/detector/scoreThreshold', '/log/level']);
  assert.deepEqual(plan.restartRequired.sort(), ['/cameras/0/source/path', '/detector/model']);
  assert.deepEqual(changedPointers({ a: 1 }, { a: 1 }), []);
});

test('ConfigReloader applies live fields, keeps restart-only ones running and reports them', async () => {
  const applied: string[][] = [];
  const r = new ConfigReloader({ schema: AgentConfig, current: structuredClone(base), applyLive: (_next, plan) => { applied.push(plan.live); }, log: silent });
  const next = structuredClone(base);
  next.log.level = 'warn';
  next.stateDir = '/elsewhere';
  const plan = await r.apply(next, 'SIGHUP');
  assert.deepEqual(applied, [['/log/level']]);
  assert.deepEqual(plan.restartRequired, ['/stateDir']);
  assert.deepEqual(r.pendingRestart, ['/stateDir']);
  assert.equal(r.config.log.level, 'warn');
  assert.equal(r.config.stateDir, '/var/lib/edge-agent', 'restart-only field keeps its running value');
  const again = await r.apply(structuredClone(next), 'SIGHUP');
  assert.deepEqual(again.live, []);
  assert.deepEqual(again.restartRequired, ['/stateDir'], 'still pending until a restart');
});
