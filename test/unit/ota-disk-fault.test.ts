/**
 * An install that meets a fault of the box (a full disk: ENOSPC) is reported failed with E_DISK and
 * tried again on the retry timer, never remembered as a refusal of the version: it used to go into
 * failed.json and the version was never installed, even once space was freed. The full disk is real
 * writes failing: the partial download is a link to /dev/full (write(2) gives ENOSPC, full(4)).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import type { DesiredModel, OtaReport } from '../../agent/src/protocol/ota.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { standInManifest } from '../helpers/ota-store.js';
import { waitFor } from '../helpers/wait.js';
import { withTempDir } from '../helpers/temp-dir.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

async function agent(dir: string) {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const reports: OtaReport[] = [];
  const link = chunkServingLink(reports);
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory: { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' },
    openDetector: async () => fakeDetector(), gate: { minFrames: 3 }, selfTestImage: image, requestTimeoutMs: 1000, retryDelayMs: 200,
  });
  const detector = await manager.start();
  const frames = setInterval(() => { void detector.detectTimed(image); }, 10);
  return {
    manager, reports,
    desire(version: string) {
      const manifest = standInManifest(version);
      const entry: DesiredModel = { version, manifest, signature: signManifest(manifest, privateKey), healthWindowMs: 100 };
      const d: DesiredPayload = { v: 1, rev: 1, ts: Date.now(), models: { detector: entry } };
      link.emit('desired', d);
    },
    async stop() {
      clearInterval(frames);
      await manager.stop();
    },
  };
}

test('a download that fills the disk is reported E_DISK, not remembered as failed, and installed once space is freed', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, async () => {
  await withTempDir('ef-ota-disk-', async (dir) => {
    const a = await agent(dir);
    try {
      const part = a.manager.store.partPath(standInManifest('2.0.0'));
      symlinkSync('/dev/full', part);
      a.desire('2.0.0');
      const failed = await waitFor('the failed report', () => a.reports.find((r) => r.version === '2.0.0' && (r.phase === 'failed' || r.phase === 'refused')));
      assert.equal(failed.phase, 'failed', `a fault of the box, retried: ${JSON.stringify(failed)}`);
      assert.equal(failed.code, 'E_DISK');
      assert.match(failed.reason ?? '', /ENOSPC/);
      assert.deepEqual(a.manager.store.failures(), {}, 'nothing held against 2.0.0');
      assert.equal(a.manager.runningVersion, '1.0.0');
      // Space freed: the retry timer installs it, with no new desired state.
      rmSync(part);
      const done = await waitFor('2.0.0 committed on the retry', () => a.reports.find((r) => r.version === '2.0.0' && r.phase === 'committed'), 5000);
      assert.equal(done.phase, 'committed');
      assert.equal(a.manager.runningVersion, '2.0.0');
    } finally {
      await a.stop();
    }
  });
});

test('a version an older agent recorded as failed for a full disk (ENOSPC in failed.json) is installed', async () => {
  await withTempDir('ef-ota-disk-', async (dir) => {
    const a = await agent(dir);
    try {
      a.manager.store.markFailed('standin', '2.0.0', 'ENOSPC', 'ENOSPC: no space left on device, write');
      a.desire('2.0.0');
      const done = await waitFor('2.0.0 committed', () => a.reports.find((r) => r.version === '2.0.0' && (r.phase === 'committed' || r.phase === 'refused')));
      assert.equal(done.phase, 'committed', JSON.stringify(done));
    } finally {
      await a.stop();
    }
  });
});
