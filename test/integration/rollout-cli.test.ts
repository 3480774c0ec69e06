/**
 * The operator path end to end with the real binaries: `fleetctl model publish DIR` into a running
 * server's registry, `fleetctl key export` (the key agents pin), `fleetctl rollout create` twice
 * (one rollout), `rollout status` until completed on two agents, and a refused action.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { startOtaAgent, type OtaTestAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

let fleet: TestFleet;
const agents: OtaTestAgent[] = [];

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  fleet.server.ota.rollouts.start(100);
  const factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0' });
  for (const id of ['cli-a', 'cli-b']) agents.push(await startOtaAgent(fleet, fleet.addDevice(id), { factoryDir, factoryVersion: '1.0.0', gate: { minFrames: 3 } }));
});
after(async () => {
  for (const a of agents) await a.stop();
  await fleet?.stop();
});

test('fleetctl model publish, key export, rollout create (twice = once), rollout status', async () => {
  const dir = writeStandIn(join(fleet.dir, 'src'), { name: 'standin', version: '2.0.0' });
  const pub = await runCli('fleetctl', ['model', 'publish', dir, '--data-dir', fleet.dir, '--json']);
  assert.equal(pub.code, 0, pub.stderr);
  const published = JSON.parse(pub.stdout) as { created: boolean; artifact: { manifest: { version: string; sha256: string } } };
  assert.equal(published.created, true);
  assert.equal(published.artifact.manifest.version, '2.0.0');
  const key = await runCli('fleetctl', ['key', 'export', '--data-dir', fleet.dir]);
  assert.equal(key.stdout, fleet.server.ota.key.publicKeyPem, 'the CLI exports the key the server signs with');
  // A mistyped data dir: no key is minted there (agents pinning it would refuse every model).
  const typo = join(fleet.dir, 'no-such-data-dir');
  const wrong = await runCli('fleetctl', ['key', 'export', '--data-dir', typo]);
  assert.notEqual(wrong.code, 0, wrong.stdout);
  assert.match(wrong.stderr, /No signing key at .*no-such-data-dir.*is .* the fleet server's data dir/);
  assert.ok(!existsSync(typo), 'nothing created');

  const token = await fleet.login();
  const args = ['rollout', 'create', '--model', 'standin@2.0.0', '--target', 'all', '--waves', '50,100', '--gate', 'healthWindowMs=300,maxFailures=0', '--server', fleet.httpUrl, '--token', token, '--json'];
  const [c1, c2] = [await runCli('fleetctl', args), await runCli('fleetctl', args)];
  assert.equal(c1.code, 0, c1.stderr);
  const r1 = JSON.parse(c1.stdout) as { created: boolean; rollout: { id: string } };
  const r2 = JSON.parse(c2.stdout) as { created: boolean; rollout: { id: string } };
  assert.equal(r1.created, true);
  assert.equal(r2.created, false);
  assert.equal(r2.rollout.id, r1.rollout.id);
  await waitFor('rollout completed', () => fleet.server.ota.rollouts.status(r1.rollout.id).state === 'completed', 20_000);
  const st = await runCli('fleetctl', ['rollout', 'status', r1.rollout.id, '--server', fleet.httpUrl, '--token', token]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /state COMPLETED/);
  assert.match(st.stdout, /succeeded 2,.*running 2\.0\.0 by their reports: 2/);
  const abort = await runCli('fleetctl', ['rollout', 'abort', r1.rollout.id, '--server', fleet.httpUrl, '--token', token]);
  assert.notEqual(abort.code, 0);
  assert.match(abort.stderr, /already completed/);
  process.stdout.write(`rollout-cli: ${st.stdout.split('\n').slice(0, 2).join(' | ')}\n`);
});

test('PUT /api/devices/:id/groups on a device that does not exist is a 404, not an orphan row', async () => {
  const ghost = await fleet.api('PUT', '/api/devices/ghost-cam/groups', { groups: ['site-a'] });
  assert.equal(ghost.status, 404, JSON.stringify(ghost.body));
  assert.deepEqual(fleet.server.ota.rolloutStore.groupsOf('ghost-cam'), []);
  const dev = fleet.addDevice('grouped-cam');
  const ok = await fleet.api('PUT', `/api/devices/${dev.id}/groups`, { groups: ['site-a'] });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(fleet.server.ota.rolloutStore.groupsOf(dev.id), ['site-a']);
  // A group given twice is stored once (it was a 500: SQLITE_CONSTRAINT_PRIMARYKEY).
  const twice = await fleet.api('PUT', `/api/devices/${dev.id}/groups`, { groups: ['site-b', 'site-b'] });
  assert.equal(twice.status, 200, JSON.stringify(twice.body));
  assert.deepEqual(twice.body, { id: dev.id, groups: ['site-b'] });
  assert.deepEqual(fleet.server.ota.rolloutStore.groupsOf(dev.id), ['site-b']);
});

test('DELETE /api/devices/:id mid-rollout takes the device out of the rollout, clears its desired state and groups', async () => {
  const gone = fleet.addDevice('gone-cam');
  const stays = fleet.addDevice('stays-cam');
  assert.equal((await fleet.api('PUT', `/api/devices/${gone.id}/groups`, { groups: ['site-z'] })).status, 200);
  const dir = writeStandIn(join(fleet.dir, 'src-gone'), { name: 'standin-gone', version: '1.0.0' });
  await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir });
  const engine = fleet.server.ota.rollouts;
  // Neither device runs an agent: both stay assigned until the one left is removed as well.
  const { rollout } = engine.create({ model: 'standin-gone', version: '1.0.0', role: 'gone-role', target: `devices:${gone.id},${stays.id}`, waves: [100], gate: { maxFailures: 0, waveTimeoutMs: 600_000 } });
  assert.equal(fleet.server.ota.desired.get(gone.id)['gone-role']?.version, '1.0.0');
  const del = await fleet.api('DELETE', `/api/devices/${gone.id}`);
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.deepEqual(engine.status(rollout.id).devices.map((d) => d.deviceId), [stays.id]);
  assert.deepEqual(fleet.server.ota.desired.get(gone.id), {});
  assert.deepEqual(fleet.server.ota.rolloutStore.groupsOf(gone.id), []);
  assert.equal((await fleet.api('DELETE', `/api/devices/${stays.id}`)).status, 200);
  await waitFor('the rollout with no device left completed', () => engine.status(rollout.id).state === 'completed', 5_000);
});
