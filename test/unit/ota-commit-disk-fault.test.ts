/**
 * A commit that cannot be written (a full disk at current.json, after the health window passed) swaps
 * the previous model back: the candidate used to keep answering frames while the agent reported, and
 * current.json named, the previous version, and each E_DISK retry loaded another copy of it and
 * overwrote the fallback slot without closing it (11 models opened, none closed, in 3 s). The full
 * disk is real writes failing: current.json's temp file is a link to /dev/full (full(4)).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { SwappableDetector, type DetectorLike } from '../../agent/src/ota/swappable-detector.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { standInManifest } from '../helpers/ota-store.js';
import { waitFor } from '../helpers/wait.js';
import { withTempDir } from '../helpers/temp-dir.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

/**
 * An OTA manager on the factory stand-in (1.0.0) with frames flowing, the models it opened tracked
 * (`open`, by version#n), and a switch that makes the disk full where current.json is written: its
 * temp file becomes a link to /dev/full while `diskFull` is on.
 */
async function startWithDisk(dir: string, diskFullAtStart: boolean) {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const reports: OtaReport[] = [];
  const link = chunkServingLink(reports);
  const open = new Set<string>();
  let opened = 0;
  const openDetector = async (modelPath: string): Promise<DetectorLike> => {
    const id = `${modelPath.includes('factory') ? '1.0.0' : '2.0.0'}#${++opened}`;
    open.add(id);
    return { ...fakeDetector(), close: async () => { open.delete(id); } };
  };
  const m = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory: { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' },
    openDetector, gate: { minFrames: 3 }, selfTestImage: image, requestTimeoutMs: 1000, retryDelayMs: 100,
  });
  const det = await m.start();
  const frames = setInterval(() => { void det.detectTimed(image); }, 5);
  const tmp = join(m.store.root, `current.json.${process.pid}.tmp`);
  let diskFull = diskFullAtStart;
  const fill = setInterval(() => {
    if (diskFull && !existsSync(tmp)) symlinkSync('/dev/full', tmp);
  }, 1);
  const setDiskFull = (full: boolean): void => {
    diskFull = full;
    if (full && !existsSync(tmp)) symlinkSync('/dev/full', tmp);
    if (!full) rmSync(tmp, { force: true });
  };
  const stop = async (): Promise<void> => {
    clearInterval(fill);
    clearInterval(frames);
    await m.stop();
  };
  return { reports, link, open, m, det, setDiskFull, stop };
}

test('a commit that fails for a full disk swaps the previous model back, closes the candidate, and commits on a retry once space is freed', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, async () => {
  await withTempDir('ef-ota-commit-', async (dir) => {
    // The disk is full when current.json is written.
    const { reports, link, open, m, det, setDiskFull, stop } = await startWithDisk(dir, true);
    try {
      const manifest = standInManifest('2.0.0');
      link.emit('desired', { v: 1, rev: 1, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: signManifest(manifest, privateKey), healthWindowMs: 50 } } });
      const failed = await waitFor('the failed commit', () => reports.find((r) => r.version === '2.0.0' && r.phase === 'failed'));
      assert.equal(failed.code, 'E_DISK', JSON.stringify(failed));
      assert.match(failed.reason ?? '', /ENOSPC.*current\.json.*1\.0\.0 runs again/);
      // What answers frames is what the agent reports and current.json names.
      assert.equal(det.version, '1.0.0', 'the previous model answers frames again');
      assert.equal(m.runningVersion, '1.0.0');
      assert.equal(existsSync(join(m.store.root, 'current.json')), false);
      // A few retries later: no copy of the candidate is left open.
      await waitFor('three failed retries', () => reports.filter((r) => r.version === '2.0.0' && r.phase === 'failed').length >= 3 ? true : undefined);
      await m.idle();
      assert.deepEqual([...open], ['1.0.0#1'], 'only the running model is open');
      // Space freed: the retry commits.
      setDiskFull(false);
      await waitFor('2.0.0 committed', () => reports.find((r) => r.version === '2.0.0' && r.phase === 'committed'), 5000);
      assert.equal(det.version, '2.0.0');
      assert.equal(m.runningVersion, '2.0.0');
      assert.equal(JSON.parse(readFileSync(join(m.store.root, 'current.json'), 'utf8')).version, '2.0.0');
      assert.equal(open.size, 1, `only the committed model is open: ${[...open].join(', ')}`);
    } finally {
      await stop();
    }
    assert.deepEqual([...open], [], 'stop() closes every model opened');
  });
});

test('a switch back to a proven version whose commit fails for a full disk goes back to the running model and closes the one it opened', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, async () => {
  await withTempDir('ef-ota-commit-', async (dir) => {
    const { reports, link, open, m, det, setDiskFull, stop } = await startWithDisk(dir, false);
    try {
      const manifest = standInManifest('2.0.0');
      link.emit('desired', { v: 1, rev: 1, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: signManifest(manifest, privateKey), healthWindowMs: 50 } } });
      await waitFor('2.0.0 committed', () => reports.find((r) => r.version === '2.0.0' && r.phase === 'committed'));
      // Back to the factory model (proven here: no health window), on a full disk.
      await m.idle();
      setDiskFull(true);
      link.emit('desired', { v: 1, rev: 2, ts: Date.now(), models: { detector: { version: '1.0.0' } } });
      const failed = await waitFor('the failed switch back', () => reports.find((r) => r.version === '1.0.0' && r.phase === 'failed'));
      assert.equal(failed.code, 'E_DISK', JSON.stringify(failed));
      assert.equal(det.version, '2.0.0', 'the committed model answers frames again');
      assert.equal(m.runningVersion, '2.0.0');
      await m.idle();
      assert.deepEqual([...open].map((id) => id.split('#')[0]), ['2.0.0'], 'the factory model opened for the switch is closed');
      setDiskFull(false);
      await waitFor('1.0.0 committed', () => reports.find((r) => r.version === '1.0.0' && r.phase === 'committed'), 5000);
      assert.equal(det.version, '1.0.0');
      assert.deepEqual([...open].map((id) => id.split('#')[0]), ['1.0.0']);
    } finally {
      await stop();
    }
    assert.deepEqual([...open], []);
  });
});

test('a swap during a trial is refused and changes nothing: the fallback (the known-good model) is never dropped unclosed', async () => {
  const closed: string[] = [];
  const named = (v: string): DetectorLike => ({ ...fakeDetector(), close: async () => { closed.push(v); } });
  const det = new SwappableDetector(named('1'), '1');
  await det.swap(named('2'), '2', { keepFallback: true });
  await assert.rejects(det.swap(named('3'), '3', { keepFallback: true }), (err: Error & { code?: string }) => err.code === 'E_TRIAL' && /2 is on trial with 1 as its fallback/.test(err.message));
  await assert.rejects(det.swap(named('3'), '3', { keepFallback: false }), { code: 'E_TRIAL' });
  assert.equal(det.version, '2');
  const rejected = await det.revert();
  await rejected?.close();
  assert.equal(det.version, '1', 'the trial still ends on its fallback');
  await det.close();
  assert.deepEqual(closed, ['2', '1']);
});
