/**
 * A real pipeline on vtest.avi (GStreamer, the COCO CenterNet detector in its inference worker)
 * swaps models mid-stream through the OTA path (8 MB over MQTT chunks, verify, stage, new worker,
 * self-test, swap, health window, commit) and drops no frame: every decoded frame is processed,
 * frame indices are contiguous, and each frame was answered by exactly one of the two versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { CameraPipeline } from '../../agent/src/pipeline/camera-pipeline.js';
import { agentConfigValidator, type AgentConfig } from '../../agent/src/config/schema.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';

const MODEL_DIR = resolve('assets/models/coco-centernet');
const VIDEO = resolve('assets/video/vtest.avi');
const missing = [join(MODEL_DIR, 'model.onnx'), VIDEO].filter((p) => !existsSync(p));
const skip = missing.length ? `needs ${missing.join(', ')} (run ./scripts/setup.sh)` : false;
const FRAMES = 80;

test('vtest.avi: the detector is swapped mid-stream with zero dropped frames', { skip, timeout: 180_000 }, async () => {
  const fleet = await startFleet({ broker: 'aedes' });
  let stopManager: (() => Promise<void>) | undefined;
  try {
    const published = (await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir: MODEL_DIR, version: '1.0.1' })).record;
    const dev = fleet.addDevice('cam-vtest');
    const link = fleet.agentLink(dev);
    const manager = new OtaManager({
      link, stateDir: join(fleet.dir, 'agent-state'), publicKeyPem: fleet.server.ota.key.publicKeyPem,
      factory: { modelPath: join(MODEL_DIR, 'model.onnx'), version: '1.0.0' },
      openDetector: (modelPath) => Detector.open({ modelPath }),
      // Same model on both sides: scores must match within the defaults; 5 frames suffice. Latency
      // gets 5× (default 2×): a 5-frame trial on the shared 2-core CI machine, with other test files
      // running, was once 2.3× its baseline. The latency rule itself is unit-tested (ota-health).
      gate: { minFrames: 5, maxLatencyRatio: 5 },
    });
    const detector = await manager.start();
    // Stopped in finally: a failed assertion must not leave the detector's worker threads alive
    // (the test process would never exit and the whole suite would hang).
    stopManager = () => manager.stop();
    link.start();
    await link.waitConnected();
    const r = agentConfigValidator.check({
      stateDir: join(fleet.dir, 'agent-state'), detector: { model: join(MODEL_DIR, 'model.onnx') },
      cameras: [{ source: { kind: 'file', path: VIDEO, id: 'vtest', maxFrames: FRAMES } }],
      schedule: { interval: 1, motion: { enabled: false } },
    });
    assert.ok(r.ok);
    const config = r.value as AgentConfig;
    const indices: number[] = [];
    let withDetections = 0;
    let desiredSent = false;
    const pipeline = new CameraPipeline({
      camera: config.cameras[0], detector, schedule: config.schedule, tracker: config.tracker, labels: [],
      sinks: {
        onFrame: async (f) => {
          indices.push(f.frame.index);
          if (f.detections) withDetections += 1;
          if (f.frame.index === 10 && !desiredSent) {
            desiredSent = true;
            fleet.server.ota.desired.set(dev.id, 'detector', { version: '1.0.1', manifest: published.manifest, signature: published.signature, healthWindowMs: 1000 });
          }
          // Keep the swap inside the stream on a slow machine: near the end, the next frame waits
          // (like a slower camera) until the new model is in; nothing is dropped either way.
          if (f.frame.index === FRAMES - 30 && detector.swaps === 0) await waitFor('swap', () => detector.swaps > 0, 120_000);
        },
      },
    });
    const stats = await pipeline.run();
    const report = await waitFor('1.0.1 committed', () => {
      const o = manager.status().last as OtaReport | undefined;
      return o?.version === '1.0.1' && (o.phase === 'committed' || o.phase === 'rolled-back') ? o : undefined;
    }, 60_000);
    assert.equal(report.phase, 'committed', report.reason);
    assert.equal(stats.framesIn, FRAMES);
    assert.equal(stats.processed, FRAMES);
    assert.equal(stats.dropped.capture, 0);
    assert.equal(stats.detected, FRAMES, 'interval 1: the detector answered every frame');
    assert.deepEqual(indices, Array.from({ length: FRAMES }, (_v, i) => i), 'contiguous frame indices');
    assert.equal(withDetections, FRAMES);
    const by = detector.answeredBy;
    assert.ok((by['1.0.0'] ?? 0) > 0 && (by['1.0.1'] ?? 0) > 0, JSON.stringify(by));
    assert.equal((by['1.0.0'] ?? 0) + (by['1.0.1'] ?? 0), FRAMES, 'each frame answered by exactly one model');
    assert.equal(manager.runningVersion, '1.0.1');
    process.stdout.write(`ota-swap-vtest: ${FRAMES} frames in, ${stats.processed} processed, 0 dropped; answered by 1.0.0: ${by['1.0.0']}, by 1.0.1: ${by['1.0.1']}; health ${JSON.stringify(report.health)}\n`);
  } finally {
    await stopManager?.();
    await fleet.stop();
  }
});
