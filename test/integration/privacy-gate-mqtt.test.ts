/**
 * The privacy gate in front of the real alert path: PrivacyGate → AgentLink (outbox, QoS 1) → aedes
 * on 127.0.0.1 (port 0) → a subscriber. Asserts on what the broker delivers: only gated images
 * arrive, each redacted (BlazeFace at 0.2 finds none of the faces it found in the raw photo), and
 * frames that a stale or failing privacy detector did not cover never arrive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { AgentLink } from '../../agent/src/link/agent-link.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { readImageFile } from '../../agent/src/preprocess/preprocess.js';
import { iou } from '../../agent/src/decode/nms.js';
import { PrivacyCoverage } from '../../agent/src/privacy/coverage.js';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PrivacyGate } from '../../agent/src/privacy/gate.js';
import { PrivacyMetrics } from '../../agent/src/privacy/metrics.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { AlertPayload } from '../../agent/src/protocol/index.js';
import type { Detection } from '../../agent/src/types.js';
import { waitFor } from '../helpers/wait.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const PHOTO = 'assets/images/faces/sample1.jpg';
const MS = 1e6;

test('nothing unredacted reaches the broker; stale and failed frames are withheld', async (t) => {
  if (!existsSync(MODEL) || !existsSync(PHOTO) || !existsSync('assets/models/blazeface-back/model.meta.json')) {
    t.skip('BlazeFace model, its metadata or the face photos are missing: run scripts/setup.sh and npx tsx scripts/prepare-models.ts');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-privacy-mqtt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { broker.close(() => server.close(() => resolve())); }));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const received: AlertPayload[] = [];
  const sub = await mqtt.connectAsync(url, { protocolVersion: 4 });
  t.after(() => sub.endAsync());
  sub.on('message', (_topic, payload) => {
    const a = JSON.parse(payload.toString('utf8')) as AlertPayload;
    if (!received.some((r) => r.id === a.id)) received.push(a); // QoS 1 may deliver twice
  });
  await sub.subscribeAsync('ef/v1/dev/+/alert', { qos: 1 });

  const link = new AgentLink({ deviceId: 'cam-privacy', secret: 'unused-by-this-broker', url, outbox: join(dir, 'outbox.sqlite'), protocolVersion: 4 });
  link.start();
  t.after(() => link.stop());
  await link.waitConnected(10_000);

  // The face detector can be made to fail, as a crashed inference worker would.
  const faces = await Detector.open({ modelPath: MODEL, scoreThreshold: 0.4, intraOpThreads: 1 });
  t.after(() => faces.close());
  let failing = false;
  const faceSource = { detect: async (img: Parameters<Detector['detect']>[0]): Promise<Detection[]> => {
    if (failing) throw new Error('inference worker exited');
    return faces.detect(img);
  } };
  const config = parsePrivacyConfig({ plates: { enabled: false }, gate: { maxAgeMs: 300 } });
  const metrics = new PrivacyMetrics();
  const coverage = new PrivacyCoverage({ maxAgeMs: config.gate.maxAgeMs, growFracPerSecond: config.gate.growFracPerSecond });
  const privacy = new PrivacyDetector({ faces: faceSource, coverage, metrics, faceScoreThreshold: config.faces.scoreThreshold });
  let seq = 0;
  const gate = new PrivacyGate({
    gate: config.gate, redaction: config.redaction, coverage, metrics,
    sink: (img) => {
      seq++;
      link.publishAlert({ v: 1, id: `al-${seq}`, ts: Math.round(img.ptsNs / MS), camera: 'front', rule: 'test', class: 'person', score: 0.9,
        box: { x: 0, y: 0, w: 10, h: 10 }, details: { ptsMs: img.ptsNs / MS },
        snapshot: { contentType: 'image/jpeg', redacted: true, width: img.width, height: img.height, dataBase64: img.jpeg.toString('base64') } });
    },
  });

  const photo = await readImageFile(PHOTO);
  const frameAt = (ptsMs: number) => ({ ...photo, ptsNs: ptsMs * MS });
  await privacy.run(frameAt(0));
  const covered = await gate.submit(frameAt(100), 'alert-snapshot'); // tracked from the detection at 0 ms
  const stale = await gate.submit(frameAt(1000), 'alert-snapshot'); // 1 s from any detection
  failing = true;
  await assert.rejects(privacy.run(frameAt(1100)));
  const failed = await gate.submit(frameAt(1100), 'alert-snapshot');
  failing = false;
  await privacy.run(frameAt(1200));
  const recovered = await gate.submit(frameAt(1200), 'alert-snapshot');
  assert.deepEqual([covered.released, stale.released, failed.released, recovered.released], [true, false, false, true]);

  await waitFor('2 alerts at the subscriber', () => received.length >= 2);
  assert.deepEqual(received.map((a) => a.details?.ptsMs).sort(), [100, 1200], 'only covered frames may reach the broker');

  // What arrived is redacted: the faces found in the raw photo are not found in the snapshots.
  const probe = await Detector.open({ modelPath: MODEL, scoreThreshold: 0.2, intraOpThreads: 1 });
  t.after(() => probe.close());
  const rawFaces = await probe.detect(photo);
  assert.ok(rawFaces.length >= 3, 'the probe should see the three faces in the raw photo');
  for (const a of received) {
    assert.ok(a.snapshot && 'dataBase64' in a.snapshot);
    const jpeg = Buffer.from(a.snapshot.dataBase64, 'base64');
    const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const got = await probe.detect({ width: info.width, height: info.height, data: new Uint8Array(data) });
    const sx = info.width / photo.width; // the gate scales snapshots down to maxWidthPx
    const again = got.filter((g) => rawFaces.some((f) => iou(g.box, { x: f.box.x * sx, y: f.box.y * sx, w: f.box.w * sx, h: f.box.h * sx }) > 0.3));
    assert.equal(again.length, 0, `snapshot at ${a.details?.ptsMs} ms shows a face: ${JSON.stringify(again)}`);
  }
  const m = metrics.snapshot();
  t.diagnostic(`privacy metrics: ${JSON.stringify(m)}`);
  assert.equal(m.imagesRedacted, 2);
  assert.equal(m.imagesWithheld.stale, 1);
  assert.equal(m.imagesWithheld.failed, 1);
  assert.equal(m.detectorFailures, 1);
});
