/**
 * Detection drift (confidence, class mix) is judged against the running model's own baseline: after
 * an OTA swap, and again after a rollback, the new model's output was compared with the old model's
 * baseline, and a model with other score calibration showed FLAGGED until the agent restarted. The
 * input signals describe the camera and keep their baseline across a swap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { FleetAttachment } from '../../agent/src/pipeline/fleet-attachment.js';
import type { Frame } from '../../agent/src/types.js';
import { fakeDetector } from '../helpers/ota-fakes.js';
import { withTempDir } from '../helpers/temp-dir.js';

const MODEL = resolve('assets/models/coco-centernet/model.onnx');
const skip = existsSync(MODEL) ? false : `needs ${MODEL} (run ./scripts/setup.sh)`;

test('an OTA swap and a rollback each give the detection signals a new baseline; the input signals keep theirs', { skip, timeout: 30_000 }, async () => {
  await withTempDir('ef-drift-swap-', async (dir) => {
    const publicKeyFile = join(dir, 'fleet.pub');
    writeFileSync(publicKeyFile, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const config = agentConfigValidator.parse({
      stateDir: join(dir, 'state'), detector: { model: MODEL },
      cameras: [{ source: { kind: 'file', path: 'v.avi', id: 'cam' } }],
      link: { url: 'mqtt://127.0.0.1:1' }, ota: { publicKeyFile, factoryVersion: '1.0.0' }, privacy: { enabled: false },
    }, 'config');
    const att = new FleetAttachment({ config, secret: 'x' });
    await att.start();
    try {
      const detector = att.detector!;
      const sinks = att.sinks();
      let index = 0;
      /** Frames of one luma, each with three persons scored around `score` (what the running model says). */
      const frames = async (n: number, score: number, luma: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const frame: Frame = { width: 8, height: 8, data: new Uint8Array(192).fill(luma), index, ptsNs: index * 40e6, capturedAtNs: 0, sourceId: 'cam' };
          index++;
          const detections = [0, 1, 2].map((k) => ({ classId: 0, label: 'person', score: score + (k - 1) * 0.03, box: { x: 0, y: 0, w: 2, h: 2 } }));
          await sinks.onFrame!({ cameraId: 'cam', frame, detections, tracks: [], alerts: [] });
        }
      };
      const drift = () => att.telemetry.drift.report();

      await frames(800, 0.8, 120); // the factory model's baseline, then its current window
      assert.deepEqual(drift().flags, []);
      await frames(400, 0.8, 40); // the camera's image darkens
      assert.ok(drift().flags.includes('brightness'));

      await detector.swap(fakeDetector(), '2.0.0', { keepFallback: true }); // OTA: the candidate runs
      await frames(800, 0.55, 40); // its scores sit lower: another calibration, same scene
      assert.ok(!drift().flags.includes('confidence'), `flags after the swap: ${drift().flags.join(', ')}`);
      assert.ok(drift().flags.includes('brightness'), 'the darkened camera is still flagged: its baseline is the camera\'s');

      const rejected = await detector.revert(); // rolled back to the factory model
      await rejected?.close();
      await frames(800, 0.8, 40);
      assert.ok(!drift().flags.includes('confidence'), `flags after the rollback: ${drift().flags.join(', ')}`);
    } finally {
      await att.stop();
    }
  });
});
