/** Model metadata (model.meta.json): defaults of the decoder chosen by `type`, errors that name one branch. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelMetadataValidator } from '../../agent/src/model/metadata.js';
import type { ConfigError } from '../../agent/src/util/errors.js';

const meta = (decoder: unknown) => ({ name: 'm', labels: ['person', 'car'], preprocess: { width: 64, height: 64, layout: 'NCHW' }, decoder });

test('hand-written decoder metadata takes the documented defaults of its type', () => {
  assert.deepEqual(modelMetadataValidator.parse(meta({ type: 'yolo', version: 'v8' }), 'm').decoder,
    { type: 'yolo', version: 'v8', classAgnosticNms: false, scoreThreshold: 0.35, iouThreshold: 0.45, maxDetections: 100 });
  assert.deepEqual(modelMetadataValidator.parse(meta({ type: 'db' }), 'm').decoder,
    { type: 'db', binaryThreshold: 0.3, boxThreshold: 0.5, unclipRatio: 1.6, minSizePx: 3, maxDetections: 100 });
  assert.deepEqual(modelMetadataValidator.parse(meta({ type: 'centernet-heads', heatmap: 'h', boxes: 'b', stride: 4 }), 'm').decoder,
    { type: 'centernet-heads', heatmap: 'h', boxes: 'b', stride: 4, layout: 'nhwc', topK: 100, scoreThreshold: 0.35, iouThreshold: 0.45, maxDetections: 100 });
});

test('a wrong decoder is one problem about its own type, not one per decoder type', () => {
  const issues = (decoder: unknown) => {
    try { modelMetadataValidator.parse(meta(decoder), 'm'); } catch (err) { return (err as ConfigError).issues; }
    assert.fail('parsed');
  };
  assert.deepEqual(issues({ type: 'yolo', version: 'v9' }).map((i) => i.path), ['/decoder/version']);
  assert.deepEqual(issues({ type: 'yolo' }).map((i) => i.path), ['/decoder/version']);
  const unknown = issues({ type: 'ssd' });
  assert.equal(unknown.length, 1);
  assert.match(unknown[0].expected, /"yolo".*"db"/);
});
