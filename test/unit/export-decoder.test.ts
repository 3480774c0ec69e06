import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decoderForExport } from '../../fleet-server/src/export/export-model.js';
import type { ModelMetadata } from '../../agent/src/model/metadata.js';

// An export that ends before the graph's own decoding reads its head maps; their stride must come from
// the size the model really sees: preprocess.width/height rounded up to multipleOf, as the agent feeds it.
test('head-map decoding of an export takes its stride from the input size rounded up to multipleOf', () => {
  const meta = {
    name: 'net', version: '1', input: 'x',
    preprocess: { width: 500, height: 500, multipleOf: 32, layout: 'NHWC', channelOrder: 'RGB', dtype: 'float32', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox' },
    decoder: { type: 'centernet', output: 'detections', scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 },
    labels: ['person'],
  } as unknown as ModelMetadata;
  const outputs = [{ name: 'heat', shape: [1, 128, 128, 80] }, { name: 'box', shape: [1, 128, 128, 4] }];
  const r = decoderForExport(meta, ['detections'], outputs, 'nhwc');
  assert.equal(r.spec.type, 'centernet-heads', r.note);
  assert.equal((r.spec as { stride: number }).stride, 4);
});
