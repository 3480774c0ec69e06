/**
 * A model installed over the air whose load never finishes. The OTA load and warm-up had no time
 * limit: the install waited for good, nothing was reported, and later desired states queued behind it.
 * Past detector.loadTimeoutMs the candidate is now refused (E_LOAD_TIMEOUT, with the reason), the
 * running model keeps answering frames, and the load's worker is stopped. The loading worker is a
 * real worker thread (test/helpers/stand-in-worker.mjs) that never answers its load request, driven
 * by the same load plumbing as the adapters (firstReply with the load's signal, stopWorkerThread);
 * the real ONNX Runtime and TensorRT adapters are given up through that signal too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as nodeSpawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { DetectorLike } from '../../agent/src/ota/swappable-detector.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { exitOf, firstReply, LoadAbortedError, stopWorkerThread } from '../../platform-adapters/worker-calls.js';
import { TensorRtAdapter } from '../../platform-adapters/tensorrt/adapter.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { fakeDetector, fakeOtaLink } from '../helpers/ota-fakes.js';
import { stageStandIn } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';
import { runTsChild } from '../helpers/gst-child.js';
import { missingAssets } from '../helpers/assets.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

/** A load as the adapters do it, in a stand-in worker that never answers: gives up and stops the worker on the signal. */
function hangingLoad(started: Worker[]) {
  return async (modelPath: string, o: { signal?: AbortSignal } = {}): Promise<DetectorLike> => {
    const worker = new Worker(new URL('../helpers/stand-in-worker.mjs', import.meta.url), { workerData: { answers: ['never'] } });
    started.push(worker);
    const exited = exitOf(worker);
    try {
      await firstReply(worker, { type: 'load', modelPath }, `loading ${modelPath}`, o.signal);
    } catch (err) {
      if (err instanceof LoadAbortedError) await stopWorkerThread(worker, `Loading ${modelPath}`, { exited });
      throw err;
    }
    return fakeDetector();
  };
}

/**
 * An OTA manager whose factory model (1.0.0) opens and whose versions installed over the air hang in
 * their load (a real worker thread each, in `workers`).
 */
function hangingOtaManager(dir: string, extra: { loadTimeoutMs?: number } = {}) {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
  const reports: OtaReport[] = [];
  const link = fakeOtaLink(reports);
  const workers: Worker[] = [];
  const hanging = hangingLoad(workers);
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, selfTestImage: image, ...extra,
    openDetector: async (modelPath, o) => (modelPath === factory.modelPath ? fakeDetector() : hanging(modelPath, o)),
  });
  return { factory, reports, link, workers, manager };
}

test('an OTA model whose load never finishes is refused after detector.loadTimeoutMs with the reason; the running model keeps answering and the load\'s worker is stopped', async () => {
  await withTempDir('ef-ota-load-', async (dir) => {
    const { factory, reports, link, workers, manager } = hangingOtaManager(dir, { loadTimeoutMs: 300 });
    const detector = await manager.start();
    try {
      const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { ...factory, manifest: undefined } });
      stageStandIn(store, '2.0.0', privateKey);
      const t0 = performance.now();
      const desire = (rev: number) => link.emit('desired', { v: 1, rev, ts: Date.now(), models: { detector: { version: '2.0.0' } } } satisfies DesiredPayload);
      desire(1);
      const refused = await waitFor('the refusal', () => reports.find((r) => r.phase === 'refused'), 10_000);
      const waitedMs = performance.now() - t0;
      assert.equal(refused.code, 'E_LOAD_TIMEOUT');
      assert.equal(refused.version, '2.0.0');
      assert.match(refused.reason ?? '', /^Version 2\.0\.0 did not load within 300 ms \(detector\.loadTimeoutMs\).* 1\.0\.0 keeps running/);
      assert.ok(waitedMs >= 290 && waitedMs < 5000, `refused after ${waitedMs.toFixed(0)} ms`);
      assert.deepEqual(reports.map((r) => r.phase), ['idle', 'loading', 'refused'], 'no self-test, swap or health window');

      // The load's worker thread is gone.
      assert.equal(workers.length, 1);
      assert.equal(workers[0].threadId, -1, 'the loading worker has exited');

      // The running model is still the one answering.
      assert.equal(manager.runningVersion, '1.0.0');
      assert.equal(detector.version, '1.0.0');
      const before = detector.answeredBy['1.0.0'] ?? 0;
      await detector.detectTimed(image);
      assert.equal(detector.answeredBy['1.0.0'], before + 1);

      // Not tried again in a loop: a later desired message for it starts no other load.
      desire(2);
      await manager.idle();
      assert.equal(workers.length, 1);
      assert.equal(reports.filter((r) => r.phase === 'loading').length, 1);
      assert.equal(manager.status().counts.refused, 1);
    } finally {
      await manager.stop();
    }
  });
});

test('stopping the agent while a version loads gives the load up at once (not remembered as failed) instead of waiting for it', async () => {
  await withTempDir('ef-ota-load-stop-', async (dir) => {
    const { factory, reports, link, workers, manager } = hangingOtaManager(dir);
    await manager.start();
    const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { ...factory, manifest: undefined } });
    stageStandIn(store, '2.0.0', privateKey);
    link.emit('desired', { v: 1, rev: 1, ts: Date.now(), models: { detector: { version: '2.0.0' } } } satisfies DesiredPayload);
    await waitFor('the load', () => reports.find((r) => r.phase === 'loading') && workers.length === 1);
    const t0 = performance.now();
    await manager.stop();
    assert.ok(performance.now() - t0 < 5000, 'stop() did not wait for the hung load (default limit: 35 min)');
    assert.equal(workers[0].threadId, -1, 'the loading worker has exited');
    assert.equal(reports.at(-1)?.code, 'E_ABORTED');
    assert.equal(store.failureOf('standin', '2.0.0'), undefined, 'tried again at the next start');
  });
});

const CENTERNET = resolve('assets/models/coco-centernet/model.onnx');

test('a real ONNX Runtime load given up through its signal rejects with E_LOAD_ABORTED and its worker thread ends (the process exits on its own)', { skip: missingAssets(CENTERNET) }, async () => {
  const { hung, code, stdout, stderr } = await runTsChild('test/helpers/load-abort-child.ts', { args: [CENTERNET, '0'], limitMs: 20_000 });
  assert.equal(hung, false, `a worker kept the process alive (stdout: ${stdout}, stderr: ${stderr})`);
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout.trim()) as { rejected?: { code: string; message: string } };
  assert.equal(out.rejected?.code, 'E_LOAD_ABORTED');
  assert.match(out.rejected?.message ?? '', /loading .*model\.onnx was given up: given up by the test; its worker was stopped/);
});

test('a TensorRT engine build given up through the load\'s signal is stopped (trtexec does not go on using the GPU) and no other provider is tried', async () => {
  await withTempDir('ef-trt-abort-', async (dir) => {
    const model = join(dir, 'm.onnx');
    writeFileSync(model, 'not parsed: the build never ends');
    writeFileSync(join(dir, 'm.meta.json'), JSON.stringify({ name: 'm', labels: ['person'], preprocess: { width: 8, height: 8, layout: 'NCHW' }, decoder: { type: 'yolo', version: 'v8' } }));
    const trtexec = join(dir, 'trtexec');
    writeFileSync(trtexec, `#!/bin/sh
case "$*" in *--help*) echo '&&&& RUNNING TensorRT.trtexec [TensorRT v8602] # trtexec --help'; exit 0;; esac
echo building; exec sleep 300
`, { mode: 0o755 });
    const pids: number[] = [];
    const tensorRt = new TensorRtAdapter({
      spawn: (cmd, args) => { const c = nodeSpawn(cmd, args); pids.push(c.pid!); return c; },
      findTrtexec: () => trtexec, cacheDir: join(dir, 'cache'), ortTensorRt: async () => ({ ok: true }),
    });
    const ac = new AbortController();
    const opening = Detector.open({ modelPath: model, providers: ['tensorrt', 'cpu'], tensorRt, signal: ac.signal });
    await waitFor('the engine build', () => pids.length === 2);
    ac.abort(new Error('past detector.loadTimeoutMs'));
    await assert.rejects(opening, /trtexec was stopped: the load was given up \(past detector\.loadTimeoutMs\)/);
    assert.throws(() => process.kill(pids[1], 0), 'trtexec is no longer running');
  });
});

test('a loading worker that crashes: the exit the adapters wait on resolves, and no rejection is left unhandled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const worker = new Worker('throw new Error("crashed while loading")', { eval: true });
    const exited = exitOf(worker);
    await assert.rejects(firstReply(worker, { type: 'load' }, 'loading crash.onnx'), /crashed while loading/);
    assert.equal(await exited, true);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
