/**
 * Publishing refuses an artifact no device can run. An ONNX file was only decoded as protobuf, so one
 * with an op onnxruntime does not know (BlazeFace with a Conv renamed Convv) was signed; and no target
 * checked the model input against the metadata's preprocess, so BlazeFace (NHWC 256×256) was signed
 * with metadata saying NCHW 320×320. Now an ONNX artifact must open in onnxruntime and the first
 * input's static dims must take the tensors the agent makes from the preprocess, for every target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { missingAssets } from '../helpers/assets.js';
import { scratchRegistry } from '../helpers/registry.js';

const SRC = 'assets/models/blazeface-back';
const TFLITE = 'assets/tflite/face_detection_short_range.tflite';
const { dir, registry, key } = scratchRegistry('ef-publish-loads-');
const skip = missingAssets(join(SRC, 'model.onnx'), TFLITE);

type Meta = { preprocess: { width: number; height: number; layout: string; multipleOf?: number; maxUpscale?: number } };
const srcMeta = (): Meta & Record<string, unknown> => JSON.parse(readFileSync(join(SRC, 'model.meta.json'), 'utf8')) as Meta & Record<string, unknown>;

function stage(name: string, model: Uint8Array | string, meta: object, file = 'model.onnx'): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  if (typeof model === 'string') copyFileSync(model, join(d, file)); else writeFileSync(join(d, file), model);
  writeFileSync(join(d, 'model.meta.json'), JSON.stringify(meta));
  return d;
}

test('an ONNX file onnxruntime cannot load is refused with its reason, nothing recorded', { skip }, async () => {
  const m = decodeModel(new Uint8Array(readFileSync(join(SRC, 'model.onnx'))));
  const conv = m.graph.nodes.find((n) => n.opType === 'Conv');
  assert.ok(conv);
  conv.opType = 'Convv';
  const d = stage('badop', encodeModel(m), srcMeta());
  await assert.rejects(publishModelDir(registry, key, { dir: d, version: '1.0.0' }),
    (err: Error & { code?: string }) => err.code === 'E_INPUT' && /badop\/model\.onnx does not load in onnxruntime, so no device could run it: .*Convv/.test(err.message));
  assert.deepEqual(registry.list(), []);
});

test('an input whose static dims differ from the metadata preprocess is refused, for ONNX and TFLite', { skip }, async () => {
  const nchw320 = srcMeta();
  nchw320.preprocess = { ...nchw320.preprocess, width: 320, height: 320, layout: 'NCHW' };
  const d = stage('size', join(SRC, 'model.onnx'), nchw320);
  await assert.rejects(publishModelDir(registry, key, { dir: d, version: '1.0.0' }),
    /The input input:0 of .*size\/model\.onnx is \[1, 256, 256, 3\] where the agent feeds \[1, 3, 320, 320\] from the preprocess in .*model\.meta\.json \(320×320, NCHW\); every device would refuse its frames/);
  // The right size in the wrong layout is refused too.
  const nchw256 = srcMeta();
  nchw256.preprocess = { ...nchw256.preprocess, layout: 'NCHW' };
  await assert.rejects(publishModelDir(registry, key, { dir: stage('layout', join(SRC, 'model.onnx'), nchw256), version: '1.0.0' }), /is \[1, 256, 256, 3\] where the agent feeds \[1, 3, 256, 256\]/);

  // MediaPipe's short-range face detector takes 128×128; metadata saying 256×256 is refused.
  const tflMeta = {
    name: 'mp-face', version: '1.0.0', task: 'detect', input: 'input',
    preprocess: { width: 256, height: 256, layout: 'NHWC', channelOrder: 'RGB', resize: 'letterbox', align: 'center', padValue: 0, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], dtype: 'float32' },
    decoder: { type: 'blazeface', anchors: { strides: [8, 16], anchorsPerCell: [2, 6] }, scoreOutputs: ['classificators'], boxOutputs: ['regressors'], boxScale: 128, scoreThreshold: 0.5, iouThreshold: 0.3, maxDetections: 20 },
    labels: ['face'],
  };
  const t = stage('tfl', TFLITE, tflMeta, 'model.tflite');
  await assert.rejects(publishModelDir(registry, key, { dir: t, version: '1.0.0', target: 'tflite' }), /The input input of .*tfl\/model\.tflite is \[1, 128, 128, 3\] where the agent feeds \[1, 256, 256, 3\]/);
  assert.deepEqual(registry.list(), []);
  // At its own size it is published.
  writeFileSync(join(t, 'model.meta.json'), JSON.stringify({ ...tflMeta, preprocess: { ...tflMeta.preprocess, width: 128, height: 128 } }));
  const { record } = await publishModelDir(registry, key, { dir: t, version: '1.0.0', target: 'tflite' });
  assert.deepEqual(record.manifest.inputs[0].dims, [1, 128, 128, 3]);
});

test('symbolic dims take any size, and the metadata\'s multipleOf rounding is what is compared', { skip }, async () => {
  const m = decodeModel(new Uint8Array(readFileSync(join(SRC, 'model.onnx'))));
  m.graph.inputs[0].shape = ['N', 'H', 'W', 3];
  const meta = srcMeta();
  meta.preprocess = { ...meta.preprocess, width: 250, height: 250, multipleOf: 32 };
  const { record } = await publishModelDir(registry, key, { dir: stage('dyn', encodeModel(m), meta), version: '1.0.1' });
  assert.deepEqual(record.manifest.inputs[0].dims, ['N', 'H', 'W', 3]);
  // 250 rounded up to a multiple of 128 is 256: the static BlazeFace takes it.
  const rounded = srcMeta();
  rounded.preprocess = { ...rounded.preprocess, width: 250, height: 250, multipleOf: 128 };
  const ok = await publishModelDir(registry, key, { dir: stage('rounded', join(SRC, 'model.onnx'), rounded), version: '1.0.2' });
  assert.equal(ok.created, true);
});

test('preprocess.maxUpscale needs a symbolic height and width: a fixed-size input is refused, a dynamic one published', { skip }, async () => {
  // maxUpscale shrinks the input per frame (a 40-pixel crop is fed at 96×96): static BlazeFace cannot take it.
  const shrink = srcMeta();
  shrink.preprocess = { ...shrink.preprocess, multipleOf: 32, maxUpscale: 2 };
  await assert.rejects(publishModelDir(registry, key, { dir: stage('fixed-upscale', join(SRC, 'model.onnx'), shrink), version: '1.0.3' }),
    /is \[1, 256, 256, 3\], with a fixed height or width, where preprocess\.maxUpscale feeds each frame at its own size up to \[1, 256, 256, 3\] \(leave maxUpscale out for a fixed-size input\)/);
  const m = decodeModel(new Uint8Array(readFileSync(join(SRC, 'model.onnx'))));
  m.graph.inputs[0].shape = [1, 'H', 'W', 3];
  const { record } = await publishModelDir(registry, key, { dir: stage('dyn-upscale', encodeModel(m), shrink), version: '1.0.4' });
  assert.deepEqual(record.manifest.inputs[0].dims, [1, 'H', 'W', 3]);
});
