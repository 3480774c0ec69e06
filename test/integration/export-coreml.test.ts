/**
 * Core ML export of BlazeFace: each `.mlmodel` (FP32, FP16, 8-bit linear weights) is decoded with the
 * Core ML protobuf spec and its layers evaluated by the reference evaluator, compared with
 * onnxruntime on a real face photo. (Core ML itself runs only on Apple hardware.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { exportCoreml } from '../../fleet-server/src/export/coreml/export.js';
import { decodeMlModel, SPEC_VERSION } from '../../fleet-server/src/export/coreml/proto.js';
import { evaluateCoreml } from '../../fleet-server/src/export/coreml/reference.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { modelInputs } from '../../fleet-server/src/quantize/frames.js';
import { loadModelMetadata } from '../../agent/src/model/metadata.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';

test('BlazeFace .mlmodel (fp32, fp16, 8-bit weights): decoded layers evaluate like onnxruntime', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const meta = await loadModelMetadata(MODEL);
  let frame;
  for await (const f of modelInputs({ source: 'assets/images/faces', maxFrames: 1 }, meta.preprocess)) frame = f;
  assert.ok(frame);
  const ort = await new OrtAdapter().createSession({ modelPath: MODEL });
  const ref = await ort.run({ [meta.input ?? 'input']: { type: 'float32', dims: frame.dims, data: (frame.data as Float32Array).slice() } });
  await ort.dispose();
  const [, H, W, C] = frame.dims;
  const chw = new Float64Array(C * H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) chw[(c * H + y) * W + x] = frame.data[(y * W + x) * C + c];
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
      const b = outs[o.name];
      const [oc, oh, ow] = b.shape;
      const want = ref.outputs[onnxOutput].data as Float32Array;
      let maxAbs = 0, lo = Infinity, hi = -Infinity;
      for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) for (let c = 0; c < oc; c++) {
        const i = (y * ow + x) * oc + c;
        maxAbs = Math.max(maxAbs, Math.abs(want[i] - b.data[(c * oh + y) * ow + x]));
        lo = Math.min(lo, want[i]); hi = Math.max(hi, want[i]);
      }
      const rel = maxAbs / (hi - lo);
      t.diagnostic(`${precision} ${onnxOutput}: max abs diff ${maxAbs.toExponential(2)} over range ${(hi - lo).toFixed(1)} (${rel.toExponential(2)}); file ${bytes.length} bytes`);
      assert.ok(rel <= tolerance[precision], `${precision} ${onnxOutput} differs by ${rel} of its range`);
    }
  }
});
