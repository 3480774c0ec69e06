/** Health window verdicts, the swappable detector (no frame lost across a swap or a failing candidate), and the artifact store's crash-safe layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HealthWindow, DEFAULT_HEALTH_GATE } from '../../agent/src/ota/health-window.js';
import { SwappableDetector, type DetectorLike } from '../../agent/src/ota/swappable-detector.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import { signManifest, type Manifest } from '../../agent/src/protocol/manifest.js';
import type { DetectResult } from '../../agent/src/infer/detector.js';

const sample = (version: string, latencyMs: number, detections: number, meanScore?: number, error?: string) => ({ version, latencyMs, detections, meanScore, ...(error ? { error } : {}) });

function window(trial: ReturnType<typeof sample>[]) {
  const h = new HealthWindow();
  for (let i = 0; i < 20; i++) h.add(sample('1', 10, 3, 0.8));
  h.startTrial('2');
  for (const s of trial) h.add(s);
  return h.verdict(DEFAULT_HEALTH_GATE);
}

test('health window: healthy, errors, 3× slower, empty output, confidence shift', () => {
  assert.equal(window(Array.from({ length: 12 }, () => sample('2', 11, 3, 0.78))).ok, true);
  assert.match(window([sample('2', 10, 0, undefined, 'boom'), sample('2', 10, 3, 0.8)]).reason, /failed on 1 frame\(s\).*boom/);
  assert.match(window(Array.from({ length: 12 }, () => sample('2', 30, 3, 0.8))).reason, /latency 30 ms is 3× the previous model's 10 ms/);
  assert.match(window(Array.from({ length: 12 }, () => sample('2', 10, 0))).reason, /output sanity: detections on 0% of frames vs 100%/);
  assert.match(window(Array.from({ length: 12 }, () => sample('2', 10, 3, 0.4))).reason, /confidence shift: mean score 0.4 vs 0.8/);
  // Sub-millisecond noise never fails a model on latency.
  const h = new HealthWindow();
  for (let i = 0; i < 10; i++) h.add(sample('1', 0.05, 1, 0.9));
  h.startTrial('2');
  for (let i = 0; i < 10; i++) h.add(sample('2', 0.4, 1, 0.9));
  assert.equal(h.verdict(DEFAULT_HEALTH_GATE).ok, true);
});

function fakeDetector(name: string, opts: { delayMs?: number; fail?: boolean } = {}): DetectorLike & { calls: number; closed: boolean } {
  const d = {
    calls: 0, closed: false,
    async detectTimed(): Promise<DetectResult> {
      d.calls += 1;
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 1));
      if (opts.fail) throw new Error(`${name} failed`);
      return { detections: [{ box: { x: 0, y: 0, w: 1, h: 1 }, score: 0.9, classId: 0, label: name }] as DetectResult['detections'], timings: { preprocessMs: 0, inferMs: 1, decodeMs: 0 } };
    },
    async close() { d.closed = true; },
  };
  return d;
}

test('swap waits for calls in flight on the old model; a failing candidate is answered by the fallback', async () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  const a = fakeDetector('a', { delayMs: 30 });
  const s = new SwappableDetector(a, '1');
  const inflight = s.detectTimed(img);
  let swapped = false;
  const sw = s.swap(fakeDetector('b'), '2', { keepFallback: false }).then((old) => { swapped = true; return old; });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(swapped, false, 'swap waits for the frame in flight');
  assert.equal((await inflight).detections[0].label, 'a');
  assert.equal(await sw, a);
  assert.equal((await s.detectTimed(img)).detections[0].label, 'b');
  const bad = fakeDetector('c', { fail: true });
  await s.swap(bad, '3', { keepFallback: true });
  const r = await s.detectTimed(img);
  assert.equal(r.detections[0].label, 'b', 'the fallback answered the frame the candidate failed');
  assert.deepEqual(s.answeredBy, { 1: 1, 2: 2 });
  assert.equal(await s.revert(), bad);
  assert.equal(s.version, '2');
});

test('a frame in flight on a candidate that is reverted, then fails, is answered by the model the trial went back to', async () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  const good = fakeDetector('good');
  const s = new SwappableDetector(good, '1');
  const bad = fakeDetector('bad', { delayMs: 30, fail: true });
  await s.swap(bad, '2', { keepFallback: true });
  const inflight = s.detectTimed(img);
  await new Promise((r) => setTimeout(r, 5));
  // The health window rolls back (on an earlier frame's failure) while this one still runs on 'bad'.
  const reverted = s.revert();
  const r = await inflight;
  assert.equal(r.detections[0].label, 'good', 'the frame is answered, not lost');
  assert.equal(await reverted, bad);
  assert.equal(s.version, '1');
  // Once committed (no trial), a failing model's error reaches the caller as before.
  await s.swap(fakeDetector('worse', { fail: true }), '3', { keepFallback: false });
  await assert.rejects(s.detectTimed(img), /worse failed/);
});

test('artifact store: staged version dirs, atomic commit, damaged current falls back to previous', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-store-'));
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    mkdirSync(join(dir, 'factory'));
    writeFileSync(join(dir, 'factory', 'model.onnx'), 'factory');
    const store = new ArtifactStore({ stateDir: dir, role: 'detector', publicKeyPem: pub, factory: { version: '0', modelPath: join(dir, 'factory', 'model.onnx'), manifest: undefined } });
    store.init();
    assert.equal((await store.current())?.version, '0');
    const install = (version: string, bytes: string) => {
      const m: Manifest = {
        name: 'm', version, target: 'onnx-cpu', precision: 'fp32', sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length,
        inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: [], metrics: {}, createdAt: '2026-01-01T00:00:00Z',
      };
      const part = store.partPath(m);
      writeFileSync(part, bytes);
      return store.stage({ partPath: part, manifest: m, signature: signManifest(m, privateKey), meta: { name: 'm' } });
    };
    install('1', 'one');
    store.commit('1', '0');
    install('2', 'two');
    // A staging dir left by a SIGKILL is ignored and cleaned; the version dir appears only complete.
    mkdirSync(join(store.root, 'versions', '.staging-3'));
    store.init();
    assert.deepEqual(readdirSync(join(store.root, 'versions')).sort(), ['1', '2']);
    assert.equal((await store.current())?.version, '1', 'staged but not committed: still 1');
    store.commit('2', '1');
    assert.equal((await store.current())?.version, '2');
    writeFileSync(join(store.versionDir('2'), 'model.onnx'), 'tw0');
    assert.equal((await store.current())?.version, '1', 'damaged 2 (sha256) → previous 1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A start that failed (a model store it cannot create) was followed by stop() closing a detector never
// opened: "Cannot read properties of undefined (reading 'close')" was all the operator saw.
test('an OTA manager that cannot start says why, and stopping it after the failure is harmless', async () => {
  const { OtaManager } = await import('../../agent/src/ota/ota-manager.js');
  const { EventEmitter } = await import('node:events');
  const dir = mkdtempSync(join(tmpdir(), 'ef-ota-start-'));
  try {
    writeFileSync(join(dir, 'state'), 'a file where the state directory should be');
    const link = Object.assign(new EventEmitter(), { publishRaw: () => true, publishReported: () => true, deviceId: 'cam-01' });
    const manager = new OtaManager({
      link: link as never, stateDir: join(dir, 'state'), publicKeyPem: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      factory: { modelPath: join(dir, 'model.onnx'), version: '1.0.0' }, openDetector: () => Promise.reject(new Error('not reached')),
    });
    await assert.rejects(manager.start(), /ENOTDIR|not a directory/);
    await manager.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
