/**
 * The TFLite export computes what its ONNX model computes, or refuses it naming the node and the
 * attribute: Resize and MaxPool attributes that TFLite has no equivalent for, and dynamic input
 * sizes, used to be dropped and the wrong model written as ok. Checked against onnxruntime in LiteRT.js.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportTflite } from '../../fleet-server/src/export/tflite/export.js';
import { exportModel } from '../../fleet-server/src/export/export-model.js';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph, floatTensor, int64Tensor, type OnnxDim, type OnnxNode, type OnnxTensor } from '../../fleet-server/src/convert/onnx/model.js';
import { TfliteAdapter } from '../../platform-adapters/tflite/adapter.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { ModelError } from '../../agent/src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-tflite-exact-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Graph { inShape: OnnxDim[]; nodes: OnnxNode[]; inits?: Record<string, OnnxTensor>; outputs: string[] }

function onnx(g: Graph): Uint8Array {
  const graph = emptyGraph('exact');
  graph.inputs.push({ name: 'x', elemType: 1, shape: g.inShape });
  for (const o of g.outputs) graph.outputs.push({ name: o, elemType: 1 });
  for (const [k, v] of Object.entries(g.inits ?? {})) graph.initializers.set(k, v);
  graph.nodes.push(...g.nodes);
  return encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 18 }], metadataProps: {}, graph });
}

/** Runs the ONNX model in onnxruntime and its TFLite export in LiteRT.js on one input; outputs by name. */
async function runBoth(bytes: Uint8Array, tflite: Uint8Array, dims: number[]): Promise<Record<string, { ort: Float32Array; tfl: Float32Array; ortDims: readonly number[]; tflDims: readonly number[] }>> {
  const tag = Math.random().toString(36).slice(2);
  writeFileSync(join(dir, `${tag}.onnx`), bytes);
  writeFileSync(join(dir, `${tag}.tflite`), tflite);
  const x = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7) * 3 + i * 0.01);
  const ort = await new OrtAdapter().createSession({ modelPath: join(dir, `${tag}.onnx`) });
  const tfl = await new TfliteAdapter().createSession({ modelPath: join(dir, `${tag}.tflite`), warmUp: false });
  try {
    const a = await ort.run({ x: { type: 'float32', dims, data: x.slice() } });
    const b = await tfl.run({ x: { type: 'float32', dims, data: x.slice() } });
    return Object.fromEntries(Object.keys(a.outputs).map((k) => [k, {
      ort: a.outputs[k].data as Float32Array, tfl: b.outputs[k].data as Float32Array, ortDims: a.outputs[k].dims, tflDims: b.outputs[k].dims,
    }]));
  } finally {
    await ort.dispose();
    await tfl.dispose();
  }
}

const refusal = (pattern: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof ModelError, `a ModelError, got ${String(e)}`);
  assert.match(e.message, pattern);
  return true;
};

test('Resize: every mode, coordinate transform and rounding the export accepts samples what onnxruntime samples; the rest is refused by name', async () => {
  const IN = [6, 7];
  const OUTS = [[12, 14], [3, 7], [4, 7], [9, 7], [6, 21], [2, 7]];
  const CTMS = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
  const accepted: OnnxNode[] = [];
  const inits: Record<string, OnnxTensor> = {};
  let refused = 0;
  for (const [k, out] of OUTS.entries()) {
    inits[`size${k}`] = int64Tensor([4], [1, 2, out[0], out[1]]);
    for (const ctm of CTMS) {
      const combos = [...['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'].map((nm) => ({ mode: 'nearest', nm })), { mode: 'linear', nm: undefined }];
      for (const { mode, nm } of combos) {
        const name = `${mode}-${ctm}-${nm ?? ''}-${out.join('x')}`;
        const attributes: OnnxNode['attributes'] = [{ name: 'mode', type: 'string', value: mode }, { name: 'coordinate_transformation_mode', type: 'string', value: ctm }];
        if (nm) attributes.push({ name: 'nearest_mode', type: 'string', value: nm });
        const node: OnnxNode = { opType: 'Resize', name, inputs: ['x', '', '', `size${k}`], outputs: [name], attributes };
        try {
          exportTflite(onnx({ inShape: [1, 2, ...IN], nodes: [node], inits: { [`size${k}`]: inits[`size${k}`] }, outputs: [name] }), { precision: 'fp32' });
          accepted.push(node);
        } catch (e) {
          refused++;
          refusal(new RegExp(`Resize ${name} .*(coordinate_transformation_mode|nearest_mode) .*no TFLite equivalent`))(e);
        }
      }
    }
  }
  // Upscaling by 2 maps in every transform (nearest and linear); so does ONNX's default (half_pixel, round_prefer_floor) on these sizes.
  for (const must of ['nearest-half_pixel-round_prefer_floor-12x14', 'linear-half_pixel--12x14', 'linear-asymmetric--9x7', 'nearest-asymmetric-floor-3x7', 'nearest-align_corners-round_prefer_ceil-12x14']) {
    assert.ok(accepted.some((n) => n.name === must), `${must} maps`);
  }
  assert.ok(refused > 0, 'some combinations have no TFLite equivalent');
  const bytes = onnx({ inShape: [1, 2, ...IN], nodes: accepted, inits, outputs: accepted.map((n) => n.name) });
  const runs = await runBoth(bytes, exportTflite(bytes, { precision: 'fp32' }).bytes, [1, 2, ...IN]);
  for (const n of accepted) {
    const r = runs[n.name];
    assert.deepEqual(r.tflDims, r.ortDims, n.name);
    const worst = r.ort.reduce((m, v, i) => Math.max(m, Math.abs(v - r.tfl[i])), 0);
    assert.ok(worst <= 1e-5, `${n.name}: TFLite differs from onnxruntime by up to ${worst}`);
  }
});

test('Resize: scales that do not give whole sizes, and tf_half_pixel_for_nn with linear, are refused naming the node and attribute', () => {
  const resize = (attributes: OnnxNode['attributes'], scale: number, inHW: number[]) => onnx({
    inShape: [1, 1, ...inHW], inits: { sc: floatTensor([4], [1, 1, scale, scale]) }, outputs: ['y'],
    nodes: [{ opType: 'Resize', name: 'rs', inputs: ['x', '', 'sc'], outputs: ['y'], attributes }],
  });
  const linearAsym: OnnxNode['attributes'] = [{ name: 'mode', type: 'string', value: 'linear' }, { name: 'coordinate_transformation_mode', type: 'string', value: 'asymmetric' }];
  assert.throws(() => exportTflite(resize(linearAsym, 1.5, [5, 5]), { precision: 'fp32' }), refusal(/Resize rs scale 1\.5 on height 5 gives 7\.5/));
  assert.doesNotThrow(() => exportTflite(resize(linearAsym, 1.5, [4, 4]), { precision: 'fp32' }), '1.5 × 4 rows is a whole size');
  const nearestCeil: OnnxNode['attributes'] = [{ name: 'mode', type: 'string', value: 'nearest' }, { name: 'coordinate_transformation_mode', type: 'string', value: 'asymmetric' }, { name: 'nearest_mode', type: 'string', value: 'ceil' }];
  assert.throws(() => exportTflite(resize(nearestCeil, 1.5, [4, 4]), { precision: 'fp32' }), refusal(/Resize rs .*nearest_mode ceil/));
  const linearTf: OnnxNode['attributes'] = [{ name: 'mode', type: 'string', value: 'linear' }, { name: 'coordinate_transformation_mode', type: 'string', value: 'tf_half_pixel_for_nn' }];
  assert.throws(() => exportTflite(resize(linearTf, 2, [4, 4]), { precision: 'fp32' }), refusal(/Resize rs mode linear with coordinate_transformation_mode tf_half_pixel_for_nn has no TFLite equivalent/));
});

test('MaxPool: ceil_mode is refused unless every window fits, dilations are refused; a fitting ceil_mode pools as onnxruntime does', async () => {
  const pool = (size: number, attributes: OnnxNode['attributes']) => onnx({
    inShape: [1, 2, size, size], outputs: ['y'],
    nodes: [{ opType: 'MaxPool', name: 'mp', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'kernel_shape', type: 'ints', value: [2, 2] }, ...attributes] }],
  });
  const ceil: OnnxNode['attributes'] = [{ name: 'strides', type: 'ints', value: [2, 2] }, { name: 'ceil_mode', type: 'int', value: 1 }];
  assert.throws(() => exportTflite(pool(7, ceil), { precision: 'fp32' }), refusal(/MaxPool mp ceil_mode 1 gives height 4 where TFLite's MAX_POOL_2D gives 3/));
  assert.throws(() => exportTflite(pool(8, [{ name: 'dilations', type: 'ints', value: [2, 2] }]), { precision: 'fp32' }), refusal(/MaxPool mp dilations \[2, 2\]/));
  const fits = pool(8, ceil);
  const r = (await runBoth(fits, exportTflite(fits, { precision: 'fp32' }).bytes, [1, 2, 8, 8])).y;
  assert.deepEqual(r.tflDims, [1, 2, 4, 4]);
  assert.deepEqual(Array.from(r.tfl), Array.from(r.ort));
});

test('dynamic input sizes come from the metadata preprocess, or the export is refused naming the input and axis', async () => {
  // NHWC [N, H, W, 3] → Transpose → 1×1 Conv → Transpose back.
  const bytes = onnx({
    inShape: ['N', 'H', 'W', 3], outputs: ['y'], inits: { w: floatTensor([2, 3, 1, 1], [1, 0, 0, 0, 1, 0.5]) },
    nodes: [
      { opType: 'Transpose', name: 't1', inputs: ['x'], outputs: ['xc'], attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }] },
      { opType: 'Conv', name: 'cv', inputs: ['xc', 'w'], outputs: ['c'], attributes: [] },
      { opType: 'Transpose', name: 't2', inputs: ['c'], outputs: ['y'], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
    ],
  });
  assert.throws(() => exportTflite(bytes, { precision: 'fp32' }), refusal(/input x has the dynamic size "H" on axis 1 of \[N, H, W, 3\]/));
  const model = join(dir, 'dyn', 'model.onnx');
  const out = join(dir, 'dyn-out', 'model.tflite');
  mkdirSync(join(dir, 'dyn'), { recursive: true });
  writeFileSync(model, bytes);
  await assert.rejects(exportModel({ modelPath: model, outputPath: out, target: 'tflite', precision: 'fp32' }), refusal(/dynamic size "H"/));
  writeFileSync(join(dir, 'dyn', 'model.meta.json'), JSON.stringify({
    name: 'dyn', version: '1.0.0', task: 'detect', input: 'x',
    preprocess: { width: 20, height: 12, multipleOf: 8, layout: 'NHWC', channelOrder: 'RGB', resize: 'letterbox', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'float32' },
    decoder: { type: 'db', output: 'y' }, labels: ['text'],
  }));
  const report = await exportModel({ modelPath: model, outputPath: out, target: 'tflite', precision: 'fp32' });
  // The agent feeds width and height rounded up to multipleOf: 24 × 16.
  assert.deepEqual(report.inputs, [{ name: 'x', shape: [1, 16, 24, 3] }]);
  const r = (await runBoth(bytes, readFileSync(out), [1, 16, 24, 3])).y;
  assert.deepEqual(r.tflDims, [1, 16, 24, 2]);
  r.ort.forEach((v, i) => assert.ok(Math.abs(v - r.tfl[i]) <= 1e-5, `y[${i}]`));
});

test('Clip and ReduceMean with computed bounds or axes, and Reshape allowzero with a 0, are refused; ReduceMean noop_with_empty_axes passes its input through', async () => {
  const relu: OnnxNode = { opType: 'Relu', name: 'r', inputs: ['x'], outputs: ['rx'], attributes: [] };
  const shapeOf = (name: string): OnnxNode => ({ opType: 'ReduceMean', name: `${name}-src`, inputs: ['x'], outputs: [name], attributes: [{ name: 'keepdims', type: 'int', value: 0 }] });
  // A bound computed from the input used to be dropped: Clip(x, min = mean(x)) exported as a plain copy.
  const clip = onnx({ inShape: [1, 2, 3, 3], outputs: ['y'], nodes: [shapeOf('lo'), { opType: 'Clip', name: 'cl', inputs: ['x', 'lo'], outputs: ['y'], attributes: [] }] });
  assert.throws(() => exportTflite(clip, { precision: 'fp32' }), refusal(/Clip cl takes its min from the computed value lo/));
  const reshape = onnx({ inShape: [1, 2, 3, 3], outputs: ['y'], inits: { s: int64Tensor([2], [0, 18]) }, nodes: [{ opType: 'Reshape', name: 'rs', inputs: ['x', 's'], outputs: ['y'], attributes: [{ name: 'allowzero', type: 'int', value: 1 }] }] });
  assert.throws(() => exportTflite(reshape, { precision: 'fp32' }), refusal(/Reshape rs with allowzero 1 and a 0/));
  const noop = onnx({ inShape: [1, 2, 3, 3], outputs: ['y'], nodes: [relu, { opType: 'ReduceMean', name: 'rm', inputs: ['rx'], outputs: ['y'], attributes: [{ name: 'noop_with_empty_axes', type: 'int', value: 1 }] }] });
  const r = (await runBoth(noop, exportTflite(noop, { precision: 'fp32' }).bytes, [1, 2, 3, 3])).y;
  assert.deepEqual(r.tflDims, r.ortDims);
  assert.deepEqual(Array.from(r.tfl), Array.from(r.ort));
});
