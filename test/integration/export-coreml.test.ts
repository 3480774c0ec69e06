/**
 * Core ML export of BlazeFace and CenterNet: each `.mlmodel` (FP32, FP16, 8-bit linear weights) is
 * decoded with the Core ML protobuf spec and its layers evaluated by the reference evaluator,
 * compared with onnxruntime on a real face photo and a vtest.avi frame. (Core ML itself runs only on
 * Apple hardware.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCoreml } from '../../fleet-server/src/export/coreml/export.js';
import { decodeMlModel, SPEC_VERSION } from '../../fleet-server/src/export/coreml/proto.js';
import { evaluateCoreml, type Blob } from '../../fleet-server/src/export/coreml/reference.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { modelInputs } from '../../fleet-server/src/quantize/frames.js';
import { loadModelMetadata } from '../../agent/src/model/metadata.js';
import { createDecoder } from '../../agent/src/decode/index.js';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { withExtraOutputs } from '../../fleet-server/src/quantize/calibrate.js';
import { decoderForExport, exportModel } from '../../fleet-server/src/export/export-model.js';
import { decoderOutputNames } from '../../agent/src/decode/spec.js';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { generateKeyPairSync } from 'node:crypto';

const MODEL = 'assets/models/blazeface-back/model.onnx';

/** An NHWC frame (batch 1) as the CHW blob Core ML takes. */
function toChw(data: Float32Array, H: number, W: number, C: number): Float64Array {
  const chw = new Float64Array(C * H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) chw[(c * H + y) * W + x] = data[(y * W + x) * C + c];
  return chw;
}

/** Max |onnxruntime (HWC) − Core ML reference (CHW)|, the reference's range, and their ratio. */
function diffHwcChw(want: Float32Array, b: Blob): { maxAbs: number; lo: number; hi: number; rel: number } {
  const [oc, oh, ow] = b.shape;
  let maxAbs = 0, lo = Infinity, hi = -Infinity;
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) for (let c = 0; c < oc; c++) {
    const i = (y * ow + x) * oc + c;
    maxAbs = Math.max(maxAbs, Math.abs(want[i] - b.data[(c * oh + y) * ow + x]));
    lo = Math.min(lo, want[i]); hi = Math.max(hi, want[i]);
  }
  return { maxAbs, lo, hi, rel: maxAbs / (hi - lo) };
}

/** BlazeFace's input for the first photo of assets/images/faces, and what onnxruntime gives on it. */
async function faceFrameAndOrt(meta: Awaited<ReturnType<typeof loadModelMetadata>>) {
  let frame;
  for await (const f of modelInputs({ source: 'assets/images/faces', maxFrames: 1 }, meta.preprocess)) frame = f;
  assert.ok(frame);
  const ort = await new OrtAdapter().createSession({ modelPath: MODEL });
  const ref = await ort.run({ [meta.input ?? 'input']: { type: 'float32', dims: frame.dims, data: (frame.data as Float32Array).slice() } });
  await ort.dispose();
  return { frame, ref };
}

test('BlazeFace .mlmodel (fp32, fp16, 8-bit weights): decoded layers evaluate like onnxruntime', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const meta = await loadModelMetadata(MODEL);
  const { frame, ref } = await faceFrameAndOrt(meta);
  const [, H, W, C] = frame.dims;
  const chw = toChw(frame.data as Float32Array, H, W, C);
  // 8-bit linear weights: per-channel step (max-min)/255 on BlazeFace's weights costs a few % of range.
  const tolerance = { fp32: 1e-3, fp16: 1e-3, int8: 0.1 } as const;
  for (const precision of ['fp32', 'fp16', 'int8'] as const) {
    const { bytes } = exportCoreml(readFileSync(MODEL), { precision });
    const m = decodeMlModel(bytes);
    assert.equal(m.specificationVersion, SPEC_VERSION);
    assert.equal(m.precision, precision);
    assert.deepEqual(m.inputs, [{ name: meta.input, shape: [3, 256, 256] }]);
    const outs = evaluateCoreml(m, { [meta.input ?? 'input']: { shape: [C, H, W], data: chw } });
    for (const o of m.outputs) {
      const { onnxOutput } = JSON.parse(m.metadata[`output:${o.name}`]) as { onnxOutput: string };
      const { maxAbs, lo, hi, rel } = diffHwcChw(ref.outputs[onnxOutput].data as Float32Array, outs[o.name]);
      t.diagnostic(`${precision} ${onnxOutput}: max abs diff ${maxAbs.toExponential(2)} over range ${(hi - lo).toFixed(1)} (${rel.toExponential(2)}); file ${bytes.length} bytes`);
      assert.ok(rel <= tolerance[precision], `${precision} ${onnxOutput} differs by ${rel} of its range`);
    }
  }
});

test('CenterNet .mlmodel (fp32, fp16): its heads evaluate like onnxruntime on a vtest frame, the fp16 file holds the same (float16-exact) weights; the metadata decodes them', async (t) => {
  const CN = 'assets/models/coco-centernet/model.onnx';
  if (!existsSync(CN) || !existsSync('assets/video/vtest.avi')) return t.skip(`${CN} or assets/video/vtest.avi missing (run ./scripts/setup.sh)`);
  const meta = await loadModelMetadata(CN);
  let frame;
  for await (const f of modelInputs({ source: 'assets/video/vtest.avi', maxFrames: 1, offset: 50 }, meta.preprocess)) frame = f;
  assert.ok(frame);
  const bytes = readFileSync(CN);
  const heads = ['tower_0/keypoints', 'tower_0/wh'];
  // onnxruntime with the heads as extra outputs (the ONNX graph itself outputs only its decoded rows).
  const dir = mkdtempSync(join(tmpdir(), 'ef-coreml-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const withHeads = join(dir, 'heads.onnx');
  writeFileSync(withHeads, encodeModel(withExtraOutputs(decodeModel(Uint8Array.from(bytes)), heads)));
  const ort = await new OrtAdapter().createSession({ modelPath: withHeads });
  const ref = await ort.run({ [meta.input ?? 'input']: { type: 'float32', dims: frame.dims, data: (frame.data as Float32Array).slice() } });
  await ort.dispose();
  const [, H, W, C] = frame.dims;
  const chw = toChw(frame.data as Float32Array, H, W, C);
  // Every CenterNet weight is a float16 value already (the TF.js model ships them as float16), so its
  // fp16 file holds the very weights of the fp32 one and evaluates to the same bits: the fp16 file is
  // held to equal layers, weights included, and the fp32 one is evaluated (BlazeFace's fp16 weights
  // are rounded, and its fp16 file is evaluated above).
  const fp16Bytes = exportCoreml(bytes, { precision: 'fp16' }).bytes;
  const fp16 = decodeMlModel(fp16Bytes);
  assert.equal(fp16.precision, 'fp16');
  const r = exportCoreml(bytes, { precision: 'fp32' });
  const m = decodeMlModel(r.bytes);
  assert.deepEqual(fp16.layers, m.layers, 'the fp16 file decodes to the fp32 file\'s layers and weights');
  assert.ok(r.bytes.length > 1.9 * fp16Bytes.length, `fp16 file ${fp16Bytes.length} bytes, fp32 ${r.bytes.length}`);
  assert.deepEqual(m.outputs.map((o) => o.name).sort(), heads);
  const kinds = new Set(m.layers.map((l) => l.kind));
  for (const k of ['clip', 'multiply', 'avgpool-global', 'upsample']) assert.ok(kinds.has(k as never), `layer kind ${k} used`);
  const outs = evaluateCoreml(m, { [meta.input ?? 'input']: { shape: [C, H, W], data: chw } });
  for (const name of heads) {
    const { maxAbs, lo, hi, rel } = diffHwcChw(ref.outputs[name].data as Float32Array, outs[name]);
    t.diagnostic(`centernet fp32 ${name}: max abs diff ${maxAbs.toExponential(2)} over range ${(hi - lo).toFixed(2)} (${rel.toExponential(2)}); ${m.layers.length} layers, file ${r.bytes.length} bytes`);
    assert.ok(rel <= 1e-3, `fp32 ${name} differs by ${rel} of its range`);
  }
  // The exported metadata decodes the CHW heads into the ONNX model's own detections.
  const spec = decoderForExport(meta, decodeModel(Uint8Array.from(bytes)).graph.outputs.map((o) => o.name), r.model.outputs.map((o) => ({ name: o.name, shape: [1, ...o.shape] })), 'nchw').spec;
  assert.equal(spec.type, 'centernet-heads');
  const ctx = { transform: frame.transform, labels: meta.labels, outputNames: heads };
  const fromHeads = createDecoder(spec)(Object.fromEntries(heads.map((n) => [n, { dims: [1, ...outs[n].shape], data: Float32Array.from(outs[n].data) }])), ctx);
  const fromOnnx = createDecoder(meta.decoder)({ [meta.decoder.type === 'centernet' ? meta.decoder.output ?? '' : '']: { dims: ref.outputs['tower_0/detections'].dims, data: ref.outputs['tower_0/detections'].data as Float32Array } }, { ...ctx, outputNames: ['tower_0/detections'] });
  assert.ok(fromOnnx.length >= 2, 'the ONNX model detects people in the frame');
  assert.deepEqual(fromHeads.map((d) => d.label), fromOnnx.map((d) => d.label));
  fromHeads.forEach((d, i) => { for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - fromOnnx[i].box[k]) < 0.5, `detection ${i} ${k}`); });
});

test('BlazeFace exported to Core ML: its metadata decodes the Core ML outputs into the faces onnxruntime finds, and the directory publishes', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const dir = mkdtempSync(join(tmpdir(), 'ef-coreml-bf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'bf', 'model.mlmodel');
  await exportModel({ modelPath: MODEL, outputPath: out, target: 'coreml', precision: 'fp32' });
  const meta = await loadModelMetadata(MODEL);
  const exported = await loadModelMetadata(out);
  const m = decodeMlModel(readFileSync(out));
  // The decoder reads the Core ML outputs (the head maps before the final Reshapes), not the ONNX names.
  for (const n of decoderOutputNames(exported.decoder)) assert.ok(m.outputs.some((o) => o.name === n), `${n} is a Core ML output`);
  const { frame, ref } = await faceFrameAndOrt(meta);
  const ctx = { transform: frame.transform, labels: meta.labels };
  const want = createDecoder(meta.decoder)(Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, { dims: v.dims, data: v.data as Float32Array }])), { ...ctx, outputNames: Object.keys(ref.outputs) });
  // The bridge's side (docs/ios-bridge.md): each output with an output:<name> entry goes CHW → HWC, then to reshapeFromHWC, under its Core ML name.
  const [, H, W, C] = frame.dims;
  const blobs = evaluateCoreml(m, { [meta.input ?? 'input']: { shape: [C, H, W], data: toChw(frame.data as Float32Array, H, W, C) } });
  const outputs = Object.fromEntries(m.outputs.map((o) => {
    const b = blobs[o.name];
    const entry = m.metadata[`output:${o.name}`];
    if (!entry) return [o.name, { dims: [1, ...b.shape], data: Float32Array.from(b.data) }];
    const [oc, oh, ow] = b.shape;
    const hwc = new Float32Array(b.data.length);
    for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) for (let c = 0; c < oc; c++) hwc[(y * ow + x) * oc + c] = b.data[(c * oh + y) * ow + x];
    return [o.name, { dims: (JSON.parse(entry) as { reshapeFromHWC: number[] }).reshapeFromHWC, data: hwc }];
  }));
  const got = createDecoder(exported.decoder)(outputs, { ...ctx, outputNames: m.outputs.map((o) => o.name) });
  assert.ok(want.length >= 1, 'onnxruntime finds faces in the photo');
  assert.equal(got.length, want.length);
  got.forEach((d, i) => { for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - want[i].box[k]) < 0.5, `face ${i} ${k}: ${d.box[k]} vs ${want[i].box[k]}`); });
  // Publishing checks that the decoder reads outputs the file has; it refused the export before.
  const db = openDatabase(':memory:');
  t.after(() => db.close());
  const { record } = await publishModelDir(new ModelRegistry(db, join(dir, 'data')), generateKeyPairSync('ed25519').privateKey, { dir: join(dir, 'bf'), target: 'coreml' });
  assert.deepEqual(record.manifest.decoder, exported.decoder);
});
