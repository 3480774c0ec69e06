/**
 * The privacy models (faces, plate text) were opened without the agent's detector.runTimeoutMs, so
 * they always had the 20 s default, while their E_INFER_TIMEOUT told the operator to raise
 * detector.runTimeoutMs, which did not reach them. A limit far below any real run (1 ms) shows
 * which limit each model runs under: the configured one fails the run, the default would not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { PrivacyDetector } from '../../agent/src/privacy/detector.js';
import { PrivacyStage } from '../../agent/src/privacy/stage.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import { describeError } from '../../agent/src/util/errors.js';
import type { Frame } from '../../agent/src/types.js';

const FACES = 'assets/models/blazeface-back/model.onnx';
const TEXT = 'assets/models/ppocr-det/model.onnx';
const missing = [FACES, TEXT].some((p) => !existsSync(p) || !existsSync(p.replace(/\.onnx$/, '.meta.json'))) ? 'assets missing: run scripts/setup.sh' : false;

function frame(width: number, height: number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  return { width, height, data, index: 0, ptsNs: 1_000_000, capturedAtNs: 0, sourceId: 'cam' };
}

test('the privacy stage runs the face model under the runTimeoutMs it is given', { skip: missing }, async () => {
  const config = parsePrivacyConfig({ faces: { modelPath: FACES }, plates: { enabled: false } });
  const stage = new PrivacyStage({ config, sink: () => undefined, intraOpThreads: 1, runTimeoutMs: 1 });
  await stage.start();
  try {
    const f = frame(640, 480);
    assert.equal(await stage.observe(f, []), false, 'the face model answered within 1 ms: the limit did not reach it');
    const cov = stage.coverage.at(f.ptsNs, f.sourceId);
    assert.equal(cov.ok, false);
    assert.match(!cov.ok ? cov.detail : '', /within 1 ms/);
    const out = await stage.submit(f, 'alert-snapshot');
    assert.deepEqual([out.released, !out.released && out.reason], [false, 'failed']);
  } finally {
    await stage.stop();
  }
});

test('the plate text model runs under the runTimeoutMs given to PrivacyDetector.open', { skip: missing }, async () => {
  const config = parsePrivacyConfig({ faces: { enabled: false }, plates: { textModelPath: TEXT } });
  const detector = await PrivacyDetector.open(config, { intraOpThreads: 1, runTimeoutMs: 1 });
  try {
    const car = { classId: 2, label: 'car', score: 0.9, box: { x: 40, y: 40, w: 400, h: 300 } };
    const err = await detector.run(frame(640, 480), [car]).then(() => undefined, (e: unknown) => e);
    assert.ok(err, 'the text model answered within 1 ms: the limit did not reach it');
    const d = describeError(err);
    assert.equal(d.code, 'E_INFER_TIMEOUT', d.message);
    assert.match(d.message, /within 1 ms/);
  } finally {
    await detector.close();
  }
});
