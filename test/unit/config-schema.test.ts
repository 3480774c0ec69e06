import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AgentConfig, agentConfigValidator } from '../../agent/src/config/schema.js';
import { restartPointers, planReload } from '../../agent/src/service/config-reload.js';
import { agentJsonSchema } from '../../scripts/gen-schema.js';

const minimal = {
  detector: { model: 'm.onnx' },
  cameras: [{ source: { kind: 'file', path: 'v.avi' } }],
};

test('configs/schema/agent.schema.json is generated from the TypeBox schema (run npm run gen:schema)', () => {
  assert.equal(readFileSync('configs/schema/agent.schema.json', 'utf8'), agentJsonSchema());
});

test('a minimal config gets every default, inside source kinds and nested sections too', () => {
  const cfg = agentConfigValidator.parse(minimal, 'config');
  assert.deepEqual(cfg.detector.providers, ['cpu']);
  const src = cfg.cameras[0].source;
  assert.equal(src.kind, 'file');
  assert.equal(src.kind === 'file' && src.realtime, false);
  assert.equal(src.queueSize, 4);
  assert.equal(src.id, 'cam0');
  assert.equal(cfg.schedule.motion.enabled, true);
  assert.equal(cfg.schedule.interval, 3);
  assert.equal(cfg.tracker.lostBufferFrames, 30);
  assert.deepEqual(cfg.cameras[0].rules.rules, []);
  // Defaults are applied to a copy: the caller's object is untouched.
  assert.equal((minimal.cameras[0].source as Record<string, unknown>).queueSize, undefined);
});

test('every wrong field is named with what was expected and what was given', () => {
  const bad = {
    detector: { model: 'm.onnx', providers: ['gpu'], threads: 0 },
    cameras: [{ source: { kind: 'file', path: 'v.avi', queueSise: 3 } }],
    schedule: { interval: 'three' },
    colour: 'blue',
  };
  const r = agentConfigValidator.check(bad);
  assert.equal(r.ok, false);
  const issues = r.ok ? [] : r.issues;
  const byPath = new Map(issues.map((i) => [i.path, i]));
  assert.match(byPath.get('/colour')?.expected ?? '', /unknown field "colour"/);
  assert.match(byPath.get('/cameras/0/source/queueSise')?.expected ?? '', /unknown field "queueSise"/);
  assert.equal(byPath.get('/schedule/interval')?.expected, 'integer');
  assert.equal(byPath.get('/schedule/interval')?.received, '"three"');
  assert.match(byPath.get('/detector/threads')?.expected ?? '', />= 1/);
  assert.ok(issues.some((i) => i.path.startsWith('/detector/providers/0') && i.received === '"gpu"'), JSON.stringify(issues));
});

test('an unknown source kind gives one error listing the kinds', () => {
  const r = agentConfigValidator.check({ ...minimal, cameras: [{ source: { kind: 'usb', path: 'x' } }] });
  assert.equal(r.ok, false);
  const issues = r.ok ? [] : r.issues;
  assert.equal(issues.length, 1, JSON.stringify(issues));
  assert.equal(issues[0].path, '/cameras/0/source/kind');
  assert.match(issues[0].expected, /"file".*"rtsp".*"v4l2".*"jetson-csi".*"test".*"pipeline"/);
});

test('fields that need a restart are marked in the schema; rules and thresholds reload live', () => {
  const fields = restartPointers(AgentConfig);
  for (const f of ['/detector/model', '/cameras/*/source', '/deviceId', '/tracker', '/privacy']) assert.ok(fields.includes(f), f);
  const cfg = agentConfigValidator.parse(minimal, 'config');
  const next = structuredClone(cfg);
  next.cameras[0].rules.rules.push({ type: 'line', id: 'l1', from: { x: 0, y: 0 }, to: { x: 10, y: 10 } });
  next.detector.scoreThreshold = 0.5;
  next.detector.model = 'other.onnx';
  next.log.level = 'debug';
  const plan = planReload(AgentConfig, cfg, next);
  assert.deepEqual(plan.restartRequired, ['/detector/model']);
  assert.ok(plan.live.includes('/detector/scoreThreshold'));
  assert.ok(plan.live.includes('/log/level'));
  assert.ok(plan.live.some((p) => p.startsWith('/cameras/0/rules/rules/0')));
});

test('ota without a link is refused, naming the missing section', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadAgentConfig } = await import('../../agent/src/config/load.js');
  const dir = mkdtempSync(join(tmpdir(), 'ef-cfg-'));
  try {
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ ...minimal, ota: { publicKeyFile: 'fleet.pub' } }));
    await assert.rejects(loadAgentConfig(join(dir, 'a.json')), (err: Error & { issues?: Array<{ path: string }> }) => {
      assert.match(err.message, /"ota" needs "link"/);
      assert.equal(err.issues?.[0].path, '/link');
      return true;
    });
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...minimal, link: { url: 'mqtt://127.0.0.1:1883' }, ota: { publicKeyFile: 'fleet.pub' } }));
    const cfg = await loadAgentConfig(join(dir, 'b.json'));
    assert.equal(cfg.ota?.publicKeyFile, join(dir, 'fleet.pub'), 'paths resolve against the config file');
    assert.equal(cfg.ota?.target, 'onnx-cpu');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configs/fleet-server.example.json is a valid fleet server config', async () => {
  const { loadFleetConfig } = await import('../../fleet-server/src/config/schema.js');
  const c = loadFleetConfig('configs/fleet-server.example.json');
  assert.equal(c.broker.mode, 'embedded');
  assert.equal(c.broker.embedded.engine, 'aedes');
  assert.deepEqual(c.http.allowedOrigins, []);
  assert.deepEqual(c.ingest, { perDeviceRate: 100, perDeviceBurst: 1000, perDeviceStateRate: 5, perDeviceStateBurst: 50 });
  assert.deepEqual(c.ota, { perDeviceChunkRate: 100, perDeviceChunkBurst: 200 });
});

test('fields that must agree are checked together, every problem named with its fix (check-config and run)', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { loadAgentConfig } = await import('../../agent/src/config/load.js');
  const dir = mkdtempSync(join(tmpdir(), 'ef-cross-'));
  try {
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({
      detector: { model: 'm.onnx' }, schedule: { minInterval: 10, maxInterval: 2 }, tracker: { lowScore: 0.5, highScore: 0.1 },
      cameras: [
        { source: { kind: 'test', width: 320 }, rules: { rules: [
          { type: 'line', id: 'l', from: { x: 1, y: 1 }, to: { x: 1, y: 1 } },
          { type: 'zone', id: 'l', polygon: [{ x: 1, y: 1 }, { x: 1, y: 1 }, { x: 2, y: 2 }] },
        ] } },
        { source: { kind: 'test', reconnect: { initialDelayMs: 60_000, maxDelayMs: 10 } } },
        { source: { kind: 'test', id: 'c2', height: 240 } },
      ],
    }));
    await assert.rejects(loadAgentConfig(file), (err: { issues?: Array<{ path: string }> }) => {
      assert.deepEqual(err.issues?.map((i) => i.path), [
        '/cameras/0/source/height', '/cameras/0/rules/rules/0/to', '/cameras/0/rules/rules/1/id', '/cameras/0/rules/rules/1/polygon',
        '/cameras/1/source/id', '/cameras/1/source/reconnect/initialDelayMs', '/cameras/2/source/width', '/schedule/minInterval', '/tracker/lowScore',
      ]);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a mistake in a rule is one problem, at its field (not one per kind of rule it is not); "$schema" is allowed', () => {
  const rule = (r: Record<string, unknown>) => agentConfigValidator.check({ ...minimal, cameras: [{ source: { kind: 'test' }, rules: { rules: [r] } }] });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 'zone', id: 'z', polygon: [{ x: 1, y: 1 }, { x: 2, y: 2 }] }, '/cameras/0/rules/rules/0/polygon'],
    [{ type: 'line', id: 'l', from: { x: 0, y: 0 }, to: { x: 5, y: 5 }, direction: 'left' }, '/cameras/0/rules/rules/0/direction'],
    [{ type: 'zone', id: 'q', minScor: 0.3, polygon: [{ x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 1 }] }, '/cameras/0/rules/rules/0/minScor'],
  ];
  for (const [r, path] of cases) {
    const res = rule(r);
    assert.ok(!res.ok);
    assert.deepEqual(res.issues.map((i) => i.path), [path], JSON.stringify(res.issues));
  }
  assert.ok(agentConfigValidator.check({ ...minimal, $schema: '/opt/edge-agent/current/configs/schema/agent.schema.json' }).ok);
});

// A 3.1.1 broker without $share accepts the shared subscription and delivers nothing: with
// protocolVersion 4 and the old default (shared: true) alerts, telemetry and chunk requests were lost unseen.
test('fleet server: shared subscriptions default on with MQTT 5, off with protocolVersion 4, and may be set either way', async () => {
  const { parseFleetConfig, sharedSubscriptions } = await import('../../fleet-server/src/config/schema.js');
  const external = (extra: Record<string, unknown>) => parseFleetConfig({ broker: { mode: 'external', external: { url: 'mqtt://broker:1883', password: 'pw', ...extra } } }).broker.external!;
  assert.equal(sharedSubscriptions(external({})), true);
  assert.equal(sharedSubscriptions(external({ protocolVersion: 4 })), false);
  assert.equal(sharedSubscriptions(external({ protocolVersion: 4, shared: true })), true);
  assert.equal(sharedSubscriptions(external({ shared: false })), false);
});
