/**
 * A TFLite artifact over the air: `fleetctl model export --target tflite` output published as target
 * `tflite` (tensors read from the file by LiteRT.js), installed by an agent whose `ota.target` is
 * `tflite` as `model.tflite`, loaded through LiteRT.js, health-checked and committed. A directory
 * that holds only an ONNX file cannot be published as a TFLite artifact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { startOtaAgent } from '../helpers/ota-agent.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { exportModel } from '../../fleet-server/src/export/export-model.js';
import { Detector } from '../../agent/src/infer/detector.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const PHOTO = 'assets/images/faces/sample1.jpg';
const skip = [MODEL, PHOTO].every(existsSync) ? false : `${MODEL} or ${PHOTO} missing (run ./scripts/setup.sh)`;

test('a TFLite artifact is published, installed as model.tflite, run through LiteRT.js and committed', { skip, timeout: 120_000 }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  const running: { agent?: Awaited<ReturnType<typeof startOtaAgent>> } = {};
  t.after(async () => { await running.agent?.stop(); await fleet.stop(); });
  const dir = join(fleet.dir, 'tflite-2.0.0');
  mkdirSync(dir, { recursive: true });
  await exportModel({ modelPath: MODEL, outputPath: join(dir, 'model.tflite'), target: 'tflite', precision: 'fp16' });
  const { record } = await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir, version: '2.0.0', target: 'tflite', precision: 'fp16' });
  assert.equal(record.manifest.target, 'tflite');
  assert.deepEqual(record.manifest.inputs.map((i) => i.dims), [[1, 256, 256, 3]], 'tensors come from the TFLite file');
  // Metadata whose decoder reads an output the file does not have is refused at publish.
  const bad = join(fleet.dir, 'tflite-bad');
  mkdirSync(bad);
  copyFileSync(join(dir, 'model.tflite'), join(bad, 'model.tflite'));
  const meta = JSON.parse(readFileSync(join(dir, 'model.meta.json'), 'utf8')) as { decoder: { scoreOutputs: string[] } };
  meta.decoder.scoreOutputs[0] = 'no-such-output';
  writeFileSync(join(bad, 'model.meta.json'), JSON.stringify(meta));
  await assert.rejects(publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir: bad, version: '2.0.2', target: 'tflite' }), /reads no-such-output, which .* does not output/);
  // An ONNX-only directory is not a TFLite artifact.
  await assert.rejects(publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir: 'assets/models/blazeface-back', version: '2.0.1', target: 'tflite' }), /model\.tflite[\s\S]*fleetctl model export --target tflite/);

  const dev = fleet.addDevice('cam-tfl');
  const agent = running.agent = await startOtaAgent(fleet, dev, {
    factoryDir: 'assets/models/blazeface-back', factoryVersion: '1.0.0', target: 'tflite',
    // The agent's own choice of runtime: by file extension (ONNX factory model, TFLite update).
    openDetector: (modelPath) => Detector.open({ modelPath }),
    gate: { minFrames: 3, maxLatencyRatio: 50, latencyFloorMs: 1000 },
  });
  fleet.server.ota.desired.set(dev.id, 'detector', { version: '2.0.0', manifest: record.manifest, signature: record.signature, healthWindowMs: 300 });
  const ota = () => (fleet.server.devices.get(dev.id)?.reported as { ota?: OtaReport } | null)?.ota;
  await waitFor('2.0.0 committed', () => {
    const o = ota();
    if (o?.phase === 'refused' || o?.phase === 'rolled-back') throw new Error(`${o.phase}: ${o.reason}`);
    return o?.phase === 'committed' && o.version === '2.0.0';
  }, 60_000);
  const installed = await agent.manager.store.current();
  assert.equal(basename(installed!.modelPath), 'model.tflite');
  assert.equal(agent.frames.errors, 0, 'every frame was answered through the swap');
  const d = await Detector.open({ modelPath: installed!.modelPath });
  try {
    assert.equal(d.provider, 'wasm');
    const { data, info } = await sharp(PHOTO).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const faces = await d.detect({ width: info.width, height: info.height, data });
    assert.ok(faces.length >= 2, `the installed TFLite model finds faces (${faces.length})`);
  } finally {
    await d.close();
  }
});
