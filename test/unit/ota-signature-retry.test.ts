/**
 * A version refused for a bad signature (E_SIGNATURE) is checked again once the box's key file is put
 * right: the refusal went into failed.json for good, so an operator who pinned the missing key and
 * restarted the agent (docs/rollouts.md, 2 a.m. checklist) still read "not retried" and had to publish
 * the model again under a new version for the whole fleet. Under the same keys and the same signature
 * it stays refused (nothing would change but another refusal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { standInManifest } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const pem = (k: ReturnType<typeof generateKeyPairSync>['publicKey']) => k.export({ type: 'spki', format: 'pem' }) as string;
const fleetKey = generateKeyPairSync('ed25519');
const oldKey = generateKeyPairSync('ed25519');
const OUTCOMES = ['refused', 'committed', 'rolled-back', 'failed'];
const manifest = standInManifest('2.0.0');
const signature = signManifest(manifest, fleetKey.privateKey);

test('an E_SIGNATURE refusal holds under the same key file and is checked again once the missing key is pinned', async () => {
  await withTempDir('ef-ota-sig-retry-', async (dir) => {
    writeFileSync(join(dir, 'factory.onnx'), 'factory');
    const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
    let rev = 0;
    /** One agent run pinning `publicKeyPem`, desired 2.0.0 signed by the fleet key: its outcome and the chunks it asked for. */
    const run = async (publicKeyPem: string, sig = signature) => {
      const reports: OtaReport[] = [];
      const link = chunkServingLink(reports);
      let chunkRequests = 0;
      const serve = link.publishRaw as (topic: string, payload: string) => boolean;
      link.publishRaw = ((topic: string, payload: string) => { chunkRequests += 1; return serve(topic, payload); }) as never;
      const m = new OtaManager({
        link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, selfTestImage: image, gate: { windowMs: 20, minFrames: 0 },
        openDetector: async () => fakeDetector(),
      });
      await m.start();
      try {
        rev += 1;
        link.emit('desired', { v: 1, rev, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: sig } } });
        const outcome = await waitFor('the outcome of 2.0.0', () => reports.find((r) => r.version === '2.0.0' && OUTCOMES.includes(r.phase)));
        await m.idle();
        return { outcome, chunkRequests, running: m.runningVersion };
      } finally {
        await m.stop();
      }
    };
    // The box pins only the old key (step 2 of the key change missed here).
    const first = await run(pem(oldKey.publicKey));
    assert.deepEqual([first.outcome.phase, first.outcome.code], ['refused', 'E_SIGNATURE']);
    assert.equal(first.chunkRequests, 0, 'refused before any download');
    const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem: pem(oldKey.publicKey) });
    const [entry] = Object.values(store.failures());
    assert.equal(entry?.code, 'E_SIGNATURE');
    assert.match(entry?.keys ?? '', /^[0-9a-f]{32}$/, 'remembered with the pinned key set');
    assert.match(entry?.signature ?? '', /^[0-9a-f]{32}$/, 'and the signature refused');

    // Restarted with the same key file: held, not checked again.
    const same = await run(pem(oldKey.publicKey));
    assert.equal(same.outcome.phase, 'refused');
    assert.match(same.outcome.reason ?? '', /^not retried: /);

    // A key file with the same key pinned twice, and a comment, holds the same key set: still held.
    const twice = await run(`# old key\n${pem(oldKey.publicKey)}# again\n${pem(oldKey.publicKey)}`);
    assert.match(twice.outcome.reason ?? '', /^not retried: /);

    // The missing key pinned beside the old one, the agent restarted: checked again, installed.
    const fixed = await run(`# old key\n${pem(oldKey.publicKey)}# fleet key\n${pem(fleetKey.publicKey)}`);
    assert.equal(fixed.outcome.phase, 'committed', JSON.stringify(fixed.outcome));
    assert.equal(fixed.running, '2.0.0');
    assert.ok(fixed.chunkRequests > 0, 'downloaded now');
    assert.deepEqual(store.failures(), {}, 'the refusal is forgotten once its manifest verified');
  });
});

test('under the same keys, a desired state with another signature is checked again; the one refused is not', async () => {
  await withTempDir('ef-ota-sig-retry-', async (dir) => {
    const s = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem: pem(fleetKey.publicKey) });
    s.init();
    const bad = signManifest(manifest, oldKey.privateKey);
    s.markFailed('standin', '2.0.0', 'E_SIGNATURE', 'does not verify', { signature: bad });
    assert.equal(s.failureOf('standin', '2.0.0', bad)?.code, 'E_SIGNATURE', 'the same signature: held');
    assert.equal(s.failureOf('standin', '2.0.0')?.code, 'E_SIGNATURE', 'no signature to compare (a prune): held');
    assert.equal(s.failureOf('standin', '2.0.0', signature), undefined, 'another signature: checked again');
    // That one verifies: the refusal is forgotten, or the prune after a stalled transfer or a restart
    // (which looks failures up without a signature) would delete the new download as refused.
    s.signatureVerified('standin', '2.0.0');
    assert.equal(s.failureOf('standin', '2.0.0'), undefined, 'forgotten once verified');
    s.markFailed('standin', '2.0.0', 'E_SIGNATURE', 'does not verify', { signature: bad });
    // Recorded by an older agent, without the digests: checked again once.
    s.markFailed('standin', '3.0.0', 'E_SHA256', 'damaged');
    const f = s.failures();
    f['standin@2.0.0'] = { code: 'E_SIGNATURE', reason: 'does not verify' };
    writeFileSync(join(s.root, 'failed.json'), JSON.stringify(f));
    assert.equal(s.failureOf('standin', '2.0.0', bad), undefined, 'no digests: checked again');
    assert.equal(s.failureOf('standin', '3.0.0', bad)?.code, 'E_SHA256', 'other refusals hold as before');
  });
});
