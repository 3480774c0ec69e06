/**
 * Calibration memory is bounded by one frame's activations plus the histograms, whatever the number
 * of frames (calibrate.ts): ORT's Python calibrator keeps every batch's outputs and runs out of
 * memory on long calibration sets. BlazeFace's intermediate tensors are ~70 MB a frame: kept, the
 * 40 frames measured here add ~2.8 GB (checked by keeping them); not kept, ~10 MB. The resident set
 * is sampled as the frames are consumed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { decodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType } from '../../fleet-server/src/convert/onnx/model.js';
import { calibrate } from '../../fleet-server/src/quantize/calibrate.js';
import { modelInputs } from '../../fleet-server/src/quantize/frames.js';
import { analyzeGraph } from '../../fleet-server/src/quantize/graph-info.js';
import { loadModelMetadata } from '../../agent/src/model/metadata.js';
import type { ModelInput } from '../../agent/src/preprocess/preprocess.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const FACES = 'assets/images/faces';
const missing = [MODEL, FACES].filter((p) => !existsSync(p));

test('calibration memory does not grow with the number of frames (histograms only, no tensors kept)', { skip: missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false, timeout: 120_000 }, async (t) => {
  const model = decodeModel(new Uint8Array(readFileSync(MODEL)));
  const meta = await loadModelMetadata(MODEL);
  const info = analyzeGraph(model.graph);
  const tensors = model.graph.nodes.flatMap((n) => n.outputs).filter((t) => info.elemType.get(t) === DataType.FLOAT);
  const images: ModelInput[] = [];
  for await (const f of modelInputs({ source: FACES, maxFrames: 6 }, meta.preprocess)) images.push(f);
  // The resident set is read before each frame: from frame 8's reading to the last, 15 frames ran,
  // and tensors kept would add 15 frames' worth against the 3 allowed.
  const FRAMES = 24;
  const rss: number[] = [];
  async function* frames(): AsyncGenerator<ModelInput> {
    for (let k = 0; k < FRAMES; k++) {
      rss.push(process.memoryUsage().rss);
      const f = images[k % images.length];
      yield { ...f, data: f.data.slice() };
    }
  }
  const result = await calibrate({ model, inputName: model.graph.inputs[0].name, tensors, frames: frames() });
  assert.equal(result.frames, FRAMES);
  const perFrameBytes = [...result.histograms.values()].reduce((s, h) => s + h.total, 0) * 4 / FRAMES;
  assert.ok(perFrameBytes > 10e6, `one frame's calibrated tensors: ${(perFrameBytes / 1e6).toFixed(1)} MB`);
  // After the first frames have sized ORT's arena, the rest may not add even 3 frames' worth.
  const growth = Math.max(...rss.slice(8)) - rss[8];
  t.diagnostic(`one frame's calibrated tensors ${(perFrameBytes / 1e6).toFixed(0)} MB; resident set over frames 8..${FRAMES}: +${(growth / 1e6).toFixed(0)} MB`);
  assert.ok(growth < 3 * perFrameBytes, `resident set grew ${(growth / 1e6).toFixed(0)} MB over ${FRAMES - 8} frames (one frame: ${(perFrameBytes / 1e6).toFixed(0)} MB)`);
});
