/**
 * Installs that fail for a full disk (E_DISK) are retried, and the retries no longer keep the disk full
 * for good: a disk that filled at the stage step held the whole download in versions/.staging-<v>
 * (removed only at start) while every retry downloaded the artifact again from byte 0 into what was
 * left; the retries came every retryDelayMs without end, each writing into the full disk again (all of
 * the artifact each time where the server ignores Range). Now the staged download goes back to its
 * partial file, the store's free space is checked (statfs) before the rest of an artifact is asked for,
 * and the wait between retries doubles (up to 10 min) until a success or a new desired state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { chunkServingLink } from '../helpers/ota-chunk-link.js';
import { standInManifest } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const manifest = standInManifest('2.0.0');

test('a store without room for the artifact is reported E_DISK with the figures before anything is downloaded; retries back off, start over at a new desired state, and install once space is freed', async () => {
  await withTempDir('ef-ota-space-', async (dir) => {
    writeFileSync(join(dir, 'factory.onnx'), 'factory');
    const reports: OtaReport[] = [];
    const failedAt: number[] = [];
    const link = chunkServingLink(reports);
    const report = link.publishReported;
    link.publishReported = (r) => {
      if ((r as unknown as { ota: OtaReport }).ota.phase === 'failed') failedAt.push(performance.now());
      return report(r);
    };
    let chunkRequests = 0;
    const serve = link.publishRaw as (topic: string, payload: string) => boolean;
    link.publishRaw = ((topic: string, payload: string) => { chunkRequests += 1; return serve(topic, payload); }) as never;
    let free = 1000;
    const m = new OtaManager({
      link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory: { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' },
      openDetector: async () => fakeDetector(), selfTestImage: image, gate: { windowMs: 20, minFrames: 0 }, retryDelayMs: 40, freeBytes: () => free,
    });
    await m.start();
    const desire = (rev: number) => link.emit('desired', { v: 1, rev, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: signManifest(manifest, privateKey) } } });
    try {
      desire(1);
      const failures = () => reports.filter((r) => r.version === '2.0.0' && r.phase === 'failed');
      await waitFor('four failed tries', () => failures().length >= 4 ? true : undefined);
      const first = failures()[0]!;
      assert.equal(first.code, 'E_DISK');
      assert.match(first.reason ?? '', /ENOSPC \(standin@2\.0\.0 needs \d+ KiB more \(11 B, of which 0 B downloaded, and 64 KiB to stage it\) but .*downloads has 1000 B free; not downloaded\)/);
      assert.equal(chunkRequests, 0, 'nothing asked for while there is no room');
      assert.equal(reports.some((r) => r.phase === 'downloading'), false);
      // The wait doubles: 40, 80, 160 ms, and the reports say so.
      assert.deepEqual(failures().slice(0, 3).map((r) => /tried again in ([\d.]+) s/.exec(r.reason ?? '')?.[1]), ['0.04', '0.08', '0.16']);
      const gaps = failedAt.slice(1, 4).map((t, i) => t - failedAt[i]!);
      gaps.forEach((g, i) => assert.ok(g >= 40 * 2 ** i - 5, `gap ${i} is ${g.toFixed(0)} ms, expected about ${40 * 2 ** i}`));
      // A new desired state is tried at once and starts the backoff over.
      await m.idle();
      const before = failures().length;
      desire(2);
      await waitFor('the try of rev 2', () => failures().length > before ? true : undefined);
      assert.match(failures()[before]!.reason ?? '', /tried again in 0\.04 s/);
      // Space freed: the retry timer installs it.
      free = 1 << 30;
      await waitFor('2.0.0 committed', () => reports.find((r) => r.version === '2.0.0' && r.phase === 'committed'), 5000);
      assert.equal(m.runningVersion, '2.0.0');
    } finally {
      await m.stop();
    }
  });
});

const root = process.getuid?.() === 0;
test('a disk that fills at the stage step keeps the verified download as the partial file, and the retry after space is freed installs it without downloading it again', { skip: !root && 'needs root for a tmpfs in a private mount namespace (unshare -m)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-ota-stage-full-'));
  try {
    // A private mount namespace, so the tmpfs disappears with the child and no other process sees it.
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --import tsx "$3" "$1"', 'sh',
      dir, process.execPath, new URL('../helpers/ota-stage-full-child.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = await once(child, 'exit') as [number | null];
    clearTimeout(timer);
    if (code !== 0 && /unshare failed|Operation not permitted|mount: .*permission denied/i.test(stderr)) {
      t.skip('no private mount namespace here');
      return;
    }
    assert.equal(code, 0, stderr.slice(-2000));
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as {
      failed: OtaReport; versions: string[]; partBytes: number; size: number; requestsBefore: number; requestsAfter: number; done: string; running: string;
    };
    assert.equal(out.failed.phase, 'failed', JSON.stringify(out.failed));
    assert.equal(out.failed.code, 'E_DISK');
    assert.match(out.failed.reason ?? '', /ENOSPC/);
    assert.deepEqual(out.versions, [], 'no staging directory left holding the download');
    assert.equal(out.partBytes, out.size, 'the verified download is back in its partial file');
    assert.equal(out.done, 'committed');
    assert.equal(out.running, '2.0.0');
    assert.equal(out.requestsAfter, out.requestsBefore, 'not downloaded again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
