/**
 * The retained `state` said health ok whenever the agent was online: a camera down for the run (the
 * others go on) showed only in telemetry and the journal, a block of ota.publicKeyFile that was skipped
 * only in the journal, and `fleetctl device list` and the dashboard, which read that health, said ok.
 * The state now goes `degraded` with the reasons at once. Real broker (embedded aedes), the agent's
 * FleetAttachment and AgentRunner wired as `edge-agent run` wires them, stand-in camera sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { retainedState } from '../helpers/retained-state.js';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { tempDirForFile } from '../helpers/temp-dir.js';
import { missingAssets } from '../helpers/assets.js';
import { agentConfigValidator, type CameraConfig } from '../../agent/src/config/schema.js';
import { BROKEN_RUNS_CLEAR_MS, FleetAttachment } from '../../agent/src/pipeline/fleet-attachment.js';
import { AgentRunner } from '../../agent/src/pipeline/agent-runner.js';
import { nullDetector, fakeSource } from '../helpers/runner-fakes.js';
import { AgentLink } from '../../agent/src/link/agent-link.js';

const dir = tempDirForFile('ef-link-health-');

/** The device's health in the server's registry while it is online (what device list and the dashboard show). */
function health(fleet: TestFleet, id: string) {
  const d = fleet.server.devices.get(id);
  return d?.online ? d.health ?? undefined : undefined;
}

test('a camera that gives up while others go on turns the device\'s health degraded, naming it; ok before', async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-down');
  const plan: Record<string, { frames: number; fail?: string }> = {
    lobby: { frames: 30 },
    gate: { frames: 2, fail: 'Could not open resource rtsp://admin:S3cret@10.0.0.7/live (gave up after 2 restarts)' },
  };
  const config = agentConfigValidator.parse({
    deviceId: dev.id, stateDir: join(dir, 'cam-down'), detector: { model: '/m/model.onnx' },
    link: { url: fleet.mqttUrl }, privacy: { enabled: false },
    cameras: Object.keys(plan).map((id) => ({ source: { kind: 'test', id, width: 32, height: 24 } })),
  }, 'test config');
  const fleetAtt = new FleetAttachment({ config, secret: dev.secret });
  t.after(() => fleetAtt.stop());
  await fleetAtt.start();
  const atStart = await waitFor('online with a health', () => health(fleet, dev.id));
  assert.deepEqual(atStart, { status: 'ok', reasons: [] }, 'every camera up: ok');

  const runner = new AgentRunner({
    config, detector: nullDetector, sinks: fleetAtt.sinks(), onCameraDown: fleetAtt.cameraDown,
    sourceFor: (c: CameraConfig) => fakeSource(c.source.id, plan[c.source.id]!),
  });
  const summary = await runner.run();
  assert.equal(summary.ok, true, 'the other camera went on');
  await runner.stop();

  const degraded = await waitFor('health degraded in the registry', () => {
    const h = health(fleet, dev.id);
    return h?.status === 'degraded' ? h : undefined;
  });
  assert.equal(degraded.reasons.length, 1);
  assert.match(degraded.reasons[0]!, /^camera gate down: Camera source "gate" failed: Could not open resource rtsp:\/\/.*gave up after 2 restarts/);
  assert.doesNotMatch(degraded.reasons[0]!, /S3cret/, 'the URL\'s password stays out of the fleet');

  // An OTA report (resent at each connect, after the state) carries its own health; the registry keeps
  // the last one given, so the report must not say ok over the camera that is down.
  assert.ok(fleetAtt.link!.publishReported({ v: 1, ts: Date.now(), models: { detector: '1' }, health: { status: 'ok', reasons: [] } }));
  await waitFor('the report in the registry', () => fleet.server.devices.get(dev.id)?.reported ?? undefined);
  assert.equal(health(fleet, dev.id)?.status, 'degraded');
  assert.match(health(fleet, dev.id)?.reasons[0] ?? '', /^camera gate down: /);
});

const MODEL = resolve('assets/models/coco-centernet/model.onnx');

test('a block of ota.publicKeyFile that was skipped shows in the device\'s health from the first online state', { skip: missingAssets(MODEL) }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('key-skip');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const keyFile = join(dir, 'fleet-key.pem');
  writeFileSync(keyFile, `${publicKey.export({ type: 'spki', format: 'pem' })}${privateKey.export({ type: 'pkcs8', format: 'pem' })}`);
  const config = agentConfigValidator.parse({
    deviceId: dev.id, stateDir: join(dir, 'key-skip'), detector: { model: MODEL },
    link: { url: fleet.mqttUrl }, privacy: { enabled: false }, ota: { publicKeyFile: keyFile },
    cameras: [{ source: { kind: 'test', id: 'lobby', width: 32, height: 24 } }],
  }, 'test config');
  const fleetAtt = new FleetAttachment({ config, secret: dev.secret });
  t.after(() => fleetAtt.stop());
  await fleetAtt.start();
  const h = await waitFor('online with a health', () => health(fleet, dev.id));
  assert.equal(h.status, 'degraded');
  assert.equal(h.reasons.length, 1);
  assert.match(h.reasons[0]!, /^key file: Key 2 of 2 in .*fleet-key\.pem \(line \d+\) is a private key/);
  assert.ok(h.reasons[0]!.length <= 200, 'within the protocol\'s 200 characters');
  const state = await retainedState(fleet, dev);
  assert.equal(state.online, true);
  assert.deepEqual(state.health, h, 'the retained online state says it, not only a report');
});

test('the detector\'s broken runs (NaN outputs) turn the health degraded, naming the cameras, until 10 min pass without one', async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-nan');
  const config = agentConfigValidator.parse({
    deviceId: dev.id, stateDir: join(dir, 'cam-nan'), detector: { model: '/m/model.onnx' },
    link: { url: fleet.mqttUrl }, privacy: { enabled: false },
    cameras: [{ source: { kind: 'test', id: 'lobby', width: 32, height: 24 } }, { source: { kind: 'test', id: 'gate', width: 32, height: 24 } }],
  }, 'test config');
  const fleetAtt = new FleetAttachment({ config, secret: dev.secret });
  t.after(() => fleetAtt.stop());
  await fleetAtt.start();
  assert.deepEqual(await waitFor('online with a health', () => health(fleet, dev.id)), { status: 'ok', reasons: [] });
  // The cameras' counts as the runner gives them (CameraStats.brokenRuns), checked at each telemetry snapshot.
  const runs: Record<string, number> = { lobby: 0, gate: 0 };
  fleetAtt.telemetryFor(() => ({ cameraStats: () => Object.entries(runs).map(([id, n]) => ({ cameraId: id, brokenRuns: n || undefined }) as never) }));
  fleetAtt.checkBrokenRuns(1_000);
  assert.equal(fleetAtt.link!.health().status, 'ok', 'none yet');
  runs.gate = 3;
  fleetAtt.checkBrokenRuns(2_000);
  const degraded = await waitFor('health degraded in the registry', () => { const h = health(fleet, dev.id); return h?.status === 'degraded' ? h : undefined; });
  assert.equal(degraded.reasons.length, 1);
  assert.match(degraded.reasons[0]!, /^detector output broken \(NaN, E_MODEL_OUTPUT\) on camera gate; /);
  // Still breaking 9 min later: degraded; then quiet for 10 min: ok again.
  runs.gate = 5;
  const t9 = 2_000 + 9 * 60_000;
  fleetAtt.checkBrokenRuns(t9);
  fleetAtt.checkBrokenRuns(t9 + BROKEN_RUNS_CLEAR_MS - 1);
  assert.equal(fleetAtt.link!.health().status, 'degraded');
  fleetAtt.checkBrokenRuns(t9 + BROKEN_RUNS_CLEAR_MS);
  assert.deepEqual(fleetAtt.link!.health(), { status: 'ok', reasons: [] });
  await waitFor('health ok in the registry', () => (health(fleet, dev.id)?.status === 'ok' ? true : undefined));
  // Later the other camera breaks: it alone is named, not gate, whose runs are old.
  runs.lobby = 1;
  fleetAtt.checkBrokenRuns(t9 + BROKEN_RUNS_CLEAR_MS + 5_000);
  assert.deepEqual(fleetAtt.link!.health().reasons, ["detector output broken (NaN, E_MODEL_OUTPUT) on camera lobby; see the agent's journal, check the model or roll it back"]);
});

test('health reasons are merged over sources, capped to the protocol (16 of 200 characters), and cleared back to ok', () => {
  const link = new AgentLink({ deviceId: 'cap', secret: 'x', url: 'mqtt://127.0.0.1:1', outbox: join(dir, 'cap-outbox.sqlite') });
  assert.deepEqual(link.health(), { status: 'ok', reasons: [] });
  link.setHealthReasons('cameras', Array.from({ length: 20 }, (_, i) => `camera c${i} down: ${'x'.repeat(300)}`));
  link.setHealthReasons('ota.publicKeyFile', ['key file: Key 2 of 2 skipped']);
  const h = link.health();
  assert.equal(h.status, 'degraded');
  assert.equal(h.reasons.length, 16);
  assert.ok(h.reasons.every((r) => r.length <= 200));
  assert.match(h.reasons[0]!, /^camera c0 down: x+…$/);
  assert.equal(h.reasons[15], 'and 6 more (see the agent\'s journal)');
  link.setHealthReasons('cameras', []);
  assert.deepEqual(link.health(), { status: 'degraded', reasons: ['key file: Key 2 of 2 skipped'] });
  link.setHealthReasons('ota.publicKeyFile', []);
  assert.deepEqual(link.health(), { status: 'ok', reasons: [] });
});
