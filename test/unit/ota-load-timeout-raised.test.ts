/**
 * A version refused for a load past detector.loadTimeoutMs (E_LOAD_TIMEOUT) is tried again once the
 * limit is raised, as its message advises: the refusal went into failed.json for good, and after
 * raising the limit and restarting the agent still said "not retried". Under the same limit it stays
 * refused (the same load would only time out again: no reload loop). The default limit is above the
 * TensorRT engine build's own, which it used to be below (10 min against 30).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { DetectorLike } from '../../agent/src/ota/swappable-detector.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { DEFAULT_LOAD_TIMEOUT_MS } from '../../agent/src/config/schema.js';
import { TRTEXEC_BUILD_TIMEOUT_MS } from '../../platform-adapters/tensorrt/adapter.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { standInManifest } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const OUTCOMES = ['refused', 'committed', 'rolled-back', 'failed'];
const manifest = standInManifest('2.0.0');

/** A legitimate slow load (an engine build): `ms`, given up on its signal. */
function slowLoad(ms: number, calls: string[]) {
  return (modelPath: string, o: { signal?: AbortSignal } = {}): Promise<DetectorLike> => {
    calls.push(modelPath);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve(fakeDetector()), ms);
      o.signal?.addEventListener('abort', () => { clearTimeout(t); reject(o.signal!.reason); }, { once: true });
    });
  };
}

test('a version refused for a load past detector.loadTimeoutMs stays refused under that limit and is installed once the limit is raised', async () => {
  await withTempDir('ef-ota-load-raised-', async (dir) => {
    writeFileSync(join(dir, 'factory.onnx'), 'factory');
    const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
    const store = () => new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { ...factory, manifest: undefined } });
    let rev = 0;
    /** One agent run with `loadTimeoutMs`, desired 2.0.0 (downloaded as chunks); its outcome and the candidate loads it began. */
    const run = async (loadTimeoutMs: number) => {
      const reports: OtaReport[] = [];
      const link = chunkServingLink(reports);
      let chunkRequests = 0;
      const serve = link.publishRaw as (topic: string, payload: string) => boolean;
      link.publishRaw = ((topic: string, payload: string) => { chunkRequests += 1; return serve(topic, payload); }) as never;
      const loads: string[] = [];
      const m = new OtaManager({
        link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, selfTestImage: image, loadTimeoutMs, gate: { windowMs: 20, minFrames: 0 },
        openDetector: async (p, o) => (p === factory.modelPath ? fakeDetector() : slowLoad(400, loads)(p, o)),
      });
      await m.start();
      try {
        rev += 1;
        link.emit('desired', { v: 1, rev, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: signManifest(manifest, privateKey) } } });
        const outcome = await waitFor('the outcome of 2.0.0', () => reports.find((r) => r.version === '2.0.0' && OUTCOMES.includes(r.phase)));
        await m.idle();
        return { outcome, loads: loads.length, chunkRequests, running: m.runningVersion };
      } finally {
        await m.stop();
      }
    };
    const first = await run(150);
    assert.equal(first.outcome.phase, 'refused');
    assert.equal(first.outcome.code, 'E_LOAD_TIMEOUT');
    assert.match(first.outcome.reason ?? '', /raise detector\.loadTimeoutMs above 150 ms and restart the agent: the version is tried again then/);
    assert.deepEqual(Object.values(store().failures()).map((f) => [f.code, f.loadTimeoutMs]), [['E_LOAD_TIMEOUT', 150]], 'the refusal is remembered with its limit');

    // Restarted under the same limit: not loaded again.
    const same = await run(150);
    assert.equal(same.outcome.phase, 'refused');
    assert.match(same.outcome.reason ?? '', /^not retried: /);
    assert.equal(same.loads, 0, 'no reload under the limit it failed under');
    assert.deepEqual(store().installedVersions(), ['2.0.0'], 'kept while desired, for a raised limit');

    // The limit raised, as the message advises: tried again, and installed.
    const raised = await run(3000);
    assert.equal(raised.outcome.phase, 'committed', JSON.stringify(raised.outcome));
    assert.equal(raised.running, '2.0.0');
    assert.equal(raised.chunkRequests, 0, 'not downloaded again');
  });
});

test('an E_LOAD_TIMEOUT refusal recorded without its limit (an older agent) is tried again once, then held under the limit it met', async () => {
  await withTempDir('ef-ota-load-raised-', async (dir) => {
    writeFileSync(join(dir, 'factory.onnx'), 'factory');
    const s = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, loadTimeoutMs: 1000 });
    s.init();
    s.markFailed('standin', '2.0.0', 'E_LOAD_TIMEOUT', 'Version 2.0.0 did not load within 600000 ms');
    assert.equal(s.failureOf('standin', '2.0.0'), undefined, 'limit unknown: tried again');
    s.markFailed('standin', '2.0.0', 'E_LOAD_TIMEOUT', 'Version 2.0.0 did not load within 1000 ms', { loadTimeoutMs: 1000 });
    assert.equal(s.failureOf('standin', '2.0.0')?.code, 'E_LOAD_TIMEOUT', 'met under the limit that applies: held');
    s.markFailed('standin', '3.0.0', 'E_LOAD', 'does not load');
    assert.equal(s.failureOf('standin', '3.0.0')?.code, 'E_LOAD', 'other refusals hold as before');
  });
});

test('the default load limit is above the TensorRT engine build\'s own limit', () => {
  assert.ok(DEFAULT_LOAD_TIMEOUT_MS > TRTEXEC_BUILD_TIMEOUT_MS, `${DEFAULT_LOAD_TIMEOUT_MS} ms vs trtexec's ${TRTEXEC_BUILD_TIMEOUT_MS} ms`);
});
