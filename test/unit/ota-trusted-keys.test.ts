/**
 * Changing the fleet's signing key (docs/rollouts.md, "Changing the signing key"): an agent whose key
 * file holds the old key and the new one runs a committed version signed by the old key and installs
 * one signed by the new key; an agent whose committed version no longer verifies against what it pins
 * (the key it was signed with removed, damaged files) says so, in an error log line and a refused
 * report naming the version it runs instead, where it used to fall back to the factory model reporting
 * a plain idle. Models travel as MQTT chunks served by a stand-in link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import { parseTrustedKeys, readTrustedKeys } from '../../agent/src/ota/trusted-keys.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import type { DesiredModel, OtaReport } from '../../agent/src/protocol/ota.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { stageStandIn, standInManifest } from '../helpers/ota-store.js';
import { waitFor } from '../helpers/wait.js';
import { withTempDir } from '../helpers/temp-dir.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const oldKey = generateKeyPairSync('ed25519');
const newKey = generateKeyPairSync('ed25519');
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;
const oldPem = pem(oldKey.publicKey);
const newPem = pem(newKey.publicKey);
const bothPem = `# old fleet key\n${oldPem}# new fleet key\n${newPem}`;

/** A store holding stand-in 2.0.0, signed by the old key and committed (the factory model is 1.0.0). */
function committedOldVersion(dir: string): { factory: { modelPath: string; version: string; name: string } } {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
  const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem: oldPem, factory: { ...factory, manifest: undefined } });
  store.init();
  stageStandIn(store, '2.0.0', oldKey.privateKey);
  store.commit('2.0.0', '1.0.0', standInManifest('2.0.0'));
  return { factory };
}

/** An agent's OTA manager pinning `publicKeyPem`, its link serving stand-in artifacts as chunks, a frame every 10 ms, its log lines kept. */
async function agent(dir: string, publicKeyPem: string, factory: { modelPath: string; version: string; name: string }) {
  const reports: OtaReport[] = [];
  const logs: Array<{ level: number; msg: string; version?: string; code?: string }> = [];
  const link = chunkServingLink(reports);
  const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line)); } });
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, publicKeyFile: '/etc/edge-agent/fleet.pub', factory,
    openDetector: async () => fakeDetector(), gate: { minFrames: 3 }, selfTestImage: image, logger, requestTimeoutMs: 1000,
  });
  const detector = await manager.start();
  const frames = setInterval(() => { void detector.detectTimed(image); }, 10);
  return {
    manager, reports, logs,
    desire(version: string, rev: number, signer: KeyObject) {
      const manifest = standInManifest(version);
      const entry: DesiredModel = { version, manifest, signature: signManifest(manifest, signer), healthWindowMs: 100 };
      const d: DesiredPayload = { v: 1, rev, ts: Date.now(), models: { detector: entry } };
      link.emit('desired', d);
    },
    async stop() {
      clearInterval(frames);
      await manager.stop();
    },
  };
}

test('a key file with the old and the new key runs a version signed by the old key and installs one signed by the new key', async () => {
  await withTempDir('ef-ota-keys-', async (dir) => {
    const { factory } = committedOldVersion(dir);
    const a = await agent(dir, bothPem, factory);
    try {
      assert.equal(a.manager.runningVersion, '2.0.0', 'the committed version, signed by the old key, runs');
      assert.equal(a.reports.at(-1)?.phase, 'idle');
      a.desire('3.0.0', 1, newKey.privateKey);
      const done = await waitFor('3.0.0 committed', () => a.reports.find((r) => r.version === '3.0.0' && (r.phase === 'committed' || r.phase === 'refused' || r.phase === 'failed')));
      assert.equal(done.phase, 'committed', `3.0.0, signed by the new key, is installed: ${JSON.stringify(done)}`);
      assert.equal(a.manager.runningVersion, '3.0.0');
    } finally {
      await a.stop();
    }
    // The rotation's end: the old key removed, the version signed by the new key still runs after a restart.
    const b = await agent(dir, newPem, factory);
    try {
      assert.equal(b.manager.runningVersion, '3.0.0');
      assert.equal(b.reports.at(-1)?.phase, 'idle');
    } finally {
      await b.stop();
    }
  });
});

test('a committed version that no longer verifies at start is logged as an error and reported refused, naming what runs instead', async () => {
  await withTempDir('ef-ota-keys-', async (dir) => {
    const { factory } = committedOldVersion(dir);
    // The re-key procedure got wrong: the new key alone pinned while the committed version is signed by the old one.
    const a = await agent(dir, newPem, factory);
    try {
      assert.equal(a.manager.runningVersion, '1.0.0', 'nothing else verifies: the factory model runs');
      const r = a.reports.at(-1);
      assert.equal(r?.phase, 'refused', `not a plain idle: ${JSON.stringify(r)}`);
      assert.equal(r?.version, '2.0.0');
      assert.equal(r?.code, 'E_SIGNATURE');
      assert.match(r?.reason ?? '', /2\.0\.0.*factory model 1\.0\.0/);
      const line = a.logs.find((l) => l.level >= 50 && l.version === '2.0.0');
      assert.ok(line, `an error log line names 2.0.0: ${JSON.stringify(a.logs)}`);
      assert.equal(line.code, 'E_SIGNATURE');
      assert.deepEqual(a.manager.store.failures(), {}, 'a committed version is not remembered as failed');
    } finally {
      await a.stop();
    }
  });
});

test('a committed version whose file was damaged is reported with E_SHA256 and the previous committed version runs', async () => {
  await withTempDir('ef-ota-keys-', async (dir) => {
    const { factory } = committedOldVersion(dir);
    const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem: oldPem });
    stageStandIn(store, '3.0.0', oldKey.privateKey);
    store.commit('3.0.0', '2.0.0', standInManifest('3.0.0'));
    writeFileSync(join(store.versionDir('3.0.0'), 'model.onnx'), 'model 3.0.X');
    const a = await agent(dir, oldPem, factory);
    try {
      assert.equal(a.manager.runningVersion, '2.0.0');
      const r = a.reports.at(-1);
      assert.equal(r?.phase, 'refused');
      assert.equal(r?.version, '3.0.0');
      assert.equal(r?.code, 'E_SHA256');
      assert.match(r?.reason ?? '', /previous committed version 2\.0\.0/);
      assert.ok(a.logs.some((l) => l.level >= 50 && l.version === '3.0.0' && l.code === 'E_SHA256'));
    } finally {
      await a.stop();
    }
  });
});

test('the key file: one key, several keys with comments between them, or none usable (E_KEY at start)', async () => {
  assert.equal(parseTrustedKeys(oldPem).length, 1);
  assert.equal(parseTrustedKeys(bothPem).length, 2);
  assert.throws(() => parseTrustedKeys('not a key', '/etc/edge-agent/fleet.pub'), (e: Error & { code?: string }) => e.code === 'E_KEY' && /fleet\.pub/.test(e.message));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  assert.throws(() => parseTrustedKeys(pem(rsa)), (e: Error & { code?: string }) => e.code === 'E_KEY' && /key 1 is rsa/.test(e.message));
  // Beside a usable key, another key type is skipped, not a failed start (see the test below).
  const withRsa = readTrustedKeys(`${oldPem}${pem(rsa)}`);
  assert.equal(withRsa.keys.length, 1);
  assert.match(withRsa.skipped.join('\n'), /key 2 is rsa\. It is skipped/);
  await withTempDir('ef-ota-keys-', async (dir) => {
    const { factory } = committedOldVersion(dir);
    await assert.rejects(agent(dir, 'garbage', factory), (e: Error & { code?: string }) => e.code === 'E_KEY');
  });
});

/** A PEM block cut short in a paste: its header, 30 characters of its base64, its footer. */
const damaged = (p: string) => { const l = p.split('\n'); return `${[l[0], l[1]!.slice(0, 30), l[2]].join('\n')}\n`; };
const privatePem = newKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

test('a bad block in the key file is skipped and named, the usable keys are kept; a private key is refused, never taken for its public half', () => {
  const half = readTrustedKeys(`# old fleet key\n${oldPem}# new fleet key\n${damaged(newPem)}`, '/etc/edge-agent/fleet.pub');
  assert.equal(half.keys.length, 1);
  assert.equal(half.skipped.length, 1);
  assert.match(half.skipped[0]!, /^Key 2 of 2 in \/etc\/edge-agent\/fleet\.pub \(line 6\) is not a valid public key: .*export it again with fleetctl key export/);
  // A block whose END line was lost: the next block is still read.
  const cut = readTrustedKeys(`${oldPem.split('\n').slice(0, 2).join('\n')}\n${newPem}`);
  assert.equal(cut.keys.length, 1);
  assert.match(cut.skipped[0]!, /Key 1 of 2 .*has no "-----END PUBLIC KEY-----" line/);
  // A private key: refused, alone (no usable key: E_KEY) or beside a public key (skipped).
  assert.throws(() => readTrustedKeys(privatePem, '/etc/edge-agent/fleet.pub'), (e: Error & { code?: string }) => e.code === 'E_KEY' && /is a private key \(PRIVATE KEY\); it is refused: a private key must not sit on the boxes/.test(e.message));
  const withPrivate = readTrustedKeys(`${oldPem}${privatePem}`);
  assert.equal(withPrivate.keys.length, 1);
  assert.match(withPrivate.skipped[0]!, /Key 2 of 2 .* is a private key/);
  // Every block bad: E_KEY names each.
  assert.throws(() => readTrustedKeys(`${damaged(oldPem)}${privatePem}`), (e: Error & { code?: string }) => e.code === 'E_KEY' && /^No usable fleet key in .*Key 1 of 2 .*not a valid public key.*Key 2 of 2 .*private key/s.test(e.message));
});

test('an agent whose key file holds the old key and a damaged new one starts, runs its committed version, and logs the bad block as an error', async () => {
  await withTempDir('ef-ota-keys-', async (dir) => {
    const { factory } = committedOldVersion(dir);
    const a = await agent(dir, `# old fleet key\n${oldPem}# new fleet key\n${damaged(newPem)}`, factory);
    try {
      assert.equal(a.manager.runningVersion, '2.0.0', 'the version signed by the old key still verifies');
      const bad = a.logs.find((l) => l.level === 50 && /Key 2 of 2 in \/etc\/edge-agent\/fleet\.pub/.test(l.msg));
      assert.ok(bad, `an error names the bad block: ${JSON.stringify(a.logs.map((l) => l.msg))}`);
      assert.equal(bad.code, 'E_KEY');
    } finally {
      await a.stop();
    }
  });
});
