/**
 * A run decoded in the onnxruntime worker fetches only the outputs its decoder reads
 * (agent/src/decode/spec.ts decoderFetches): the CenterNet's decoder reads its 100 detections, and its
 * 5.2 MB keypoint map and size map stay in the runtime. Which names are fetched is checked on every
 * decoder kind; on the real CenterNet the worker's detections are the same as decoding a run that
 * fetched every output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, floatTensor, type OnnxModel } from '../../fleet-server/src/convert/onnx/model.js';
import type { PreprocessSpec } from '../../agent/src/model/metadata.js';
import { OrtAdapter, type OrtWorkerSession } from '../../platform-adapters/onnxruntime/adapter.js';
import { createDecoder, type OutputMap } from '../../agent/src/decode/index.js';
import { decoderFetches, type DecoderSpec } from '../../agent/src/decode/spec.js';
import { loadModelMetadata } from '../../agent/src/model/metadata.js';
import { toTensor } from '../../agent/src/preprocess/tensor.js';
import { stretchTransform } from '../../agent/src/preprocess/transform.js';

const CENTERNET = 'assets/models/coco-centernet/model.onnx';
const common = { scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 };

test('decoderFetches: the decoder\'s outputs among the model\'s, its first output when it names none, all when it has none of them', () => {
  const cn = ['tower_0/wh', 'tower_0/keypoints', 'tower_0/detections'];
  assert.deepEqual(decoderFetches({ type: 'centernet', output: 'tower_0/detections', ...common } as DecoderSpec, cn), ['tower_0/detections']);
  const bf = { type: 'blazeface', scoreOutputs: ['s16', 's8'], boxOutputs: ['b16', 'b8'] } as unknown as DecoderSpec;
  assert.deepEqual(decoderFetches(bf, ['b8', 's8', 'b16', 's16', 'extra']), ['s16', 's8', 'b16', 'b8']);
  assert.deepEqual(decoderFetches({ type: 'centernet-heads', heatmap: 'hm', boxes: 'wh', ...common } as unknown as DecoderSpec, ['wh', 'hm', 'offset']), ['hm', 'wh']);
  assert.deepEqual(decoderFetches({ type: 'yolo', ...common } as unknown as DecoderSpec, ['output0', 'proto']), ['output0'], 'no name: the first output, as the decoder takes');
  assert.equal(decoderFetches({ type: 'centernet', output: 'renamed', ...common } as DecoderSpec, cn), undefined, 'fetch all: the decoder then names the missing output');
  assert.equal(decoderFetches(bf, ['s16', 's8', 'b16']), undefined, 'one missing: all, so that the decoder lists the model\'s real outputs');
});

/**
 * det [1, 2, 6]: one box at score 0.9 (plus 0·mean(x), so the input is read), and the input's shape as
 * an int64 output no decoder can read (the worker's Float32Array.from throws on BigInt64Array).
 */
function twoOutputModel(): OnnxModel {
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {},
    graph: {
      name: 'two-outputs', valueInfo: [],
      initializers: new Map([['detc', floatTensor([1, 2, 6], [1, 1, 5, 6, 0.9, 0, 0, 0, 0, 0, 0.1, 1])], ['zero', floatTensor([], [0])]]),
      nodes: [
        { opType: 'ReduceMean', name: 'mean', inputs: ['x'], outputs: ['m'], attributes: [{ name: 'keepdims', type: 'int', value: 0 }] },
        { opType: 'Mul', name: 'mul', inputs: ['m', 'zero'], outputs: ['z'], attributes: [] },
        { opType: 'Add', name: 'add', inputs: ['detc', 'z'], outputs: ['det'], attributes: [] },
        { opType: 'Shape', name: 'shape', inputs: ['x'], outputs: ['shape'], attributes: [] },
      ],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 8, 8, 3] }],
      outputs: [{ name: 'shape', elemType: DataType.INT64, shape: [4] }, { name: 'det', elemType: DataType.FLOAT, shape: [1, 2, 6] }],
    },
  };
}

test('the worker fetches only the decoder\'s output: an int64 output beside it is never read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-fetch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, encodeModel(twoOutputModel()));
  const session = await new OrtAdapter().createSession({ modelPath, providers: ['cpu'] }) as OrtWorkerSession;
  t.after(() => session.dispose());
  const spec: PreprocessSpec = { width: 8, height: 8, layout: 'NHWC', channelOrder: 'RGB', resize: 'stretch', align: 'center', padValue: 0, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'float32' };
  const transform = stretchTransform({ srcWidth: 8, srcHeight: 8, dstWidth: 8, dstHeight: 8 });
  const r = await session.runRgb('x', new Uint8Array(8 * 8 * 3).fill(100), spec, { spec: { type: 'centernet', output: 'det', ...common }, labels: ['person'], transform });
  assert.deepEqual(r.detections?.map((d) => ({ label: d.label, score: Math.round(d.score * 10) / 10, box: d.box })), [{ label: 'person', score: 0.9, box: { x: 1, y: 1, w: 4, h: 5 } }]);
});

test('the worker decodes the CenterNet from its detections alone, as from a run that fetched every output', async (t) => {
  const meta = await loadModelMetadata(CENTERNET);
  const spec = meta.preprocess;
  const session = await new OrtAdapter().createSession({ modelPath: CENTERNET, providers: ['cpu'] }) as OrtWorkerSession;
  t.after(() => session.dispose());
  const rgb = new Uint8Array(await sharp('assets/images/licenseplate_motion.jpg').removeAlpha().resize(spec.width, spec.height, { fit: 'fill' }).raw().toBuffer());
  const transform = stretchTransform({ srcWidth: spec.width, srcHeight: spec.height, dstWidth: spec.width, dstHeight: spec.height });
  const input = meta.input ?? session.info.inputs[0].name;
  // Before runRgb, which hands the pixels' buffer over to the worker.
  const tensor = toTensor(rgb, spec);
  const decoded = await session.runRgb(input, rgb, spec, { spec: meta.decoder, labels: meta.labels, transform });
  assert.deepEqual(decoded.outputs, {}, 'only detections come back');
  const all = await session.run({ [input]: { type: spec.dtype, dims: tensor.dims, data: tensor.data } });
  assert.deepEqual(Object.keys(all.outputs).sort(), ['tower_0/detections', 'tower_0/keypoints', 'tower_0/wh']);
  const map: OutputMap = {};
  for (const [name, o] of Object.entries(all.outputs)) map[name] = { dims: o.dims, data: o.data as Float32Array };
  const expected = createDecoder(meta.decoder)(map, { transform, labels: meta.labels, outputNames: session.info.outputs.map((o) => o.name) });
  assert.ok(expected.length > 0, 'the photo has something the CenterNet finds');
  assert.deepEqual(decoded.detections, expected);
});
