/**
 * TFLite export of the default detector (CenterNet) and face detector (BlazeFace), checked in
 * LiteRT.js against onnxruntime on real frames (vtest.avi, the face photos): FP32 and FP16 outputs
 * within 1e-3 of each output's range; INT8 detections against the FP32 model's (mAP@0.5, through the
 * accuracy gate's evaluateModels);
 * and the same FP32 files run in Debian's Arm NN (pyarmnn, CpuRef) with matching outputs.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { exportTflite } from '../../fleet-server/src/export/tflite/export.js';
import { tfliteKeepFloat, tfliteRanges } from '../../fleet-server/src/export/tflite/ranges.js';
import { decoderForExport } from '../../fleet-server/src/export/export-model.js';
import { decodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { modelInputs } from '../../fleet-server/src/quantize/frames.js';
import { evaluateModels, type EvaluateReport } from '../../fleet-server/src/quantize/evaluate.js';
import { runCli } from '../helpers/cli.js';
import type { CalibrationMethod } from '../../fleet-server/src/quantize/ranges.js';
import { TfliteAdapter } from '../../platform-adapters/tflite/adapter.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { loadModelMetadata, type ModelMetadata } from '../../agent/src/model/metadata.js';
import type { ModelInput } from '../../agent/src/preprocess/preprocess.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-export-tflite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Case { name: string; model: string; frames: { source: string; maxFrames: number; stride?: number; offset?: number } }
const CASES: Case[] = [
  { name: 'blazeface-back', model: 'assets/models/blazeface-back/model.onnx', frames: { source: 'assets/images/faces', maxFrames: 2 } },
  { name: 'coco-centernet', model: 'assets/models/coco-centernet/model.onnx', frames: { source: 'assets/video/vtest.avi', maxFrames: 2, stride: 300, offset: 120 } },
];

async function collect(sel: Case['frames'], meta: ModelMetadata): Promise<ModelInput[]> {
  const out: ModelInput[] = [];
  for await (const f of modelInputs(sel, meta.preprocess)) out.push(f);
  return out;
}

function feed(meta: ModelMetadata, f: ModelInput): Record<string, { type: 'float32'; dims: number[]; data: Float32Array }> {
  return { [meta.input ?? 'input']: { type: 'float32', dims: f.dims, data: (f.data as Float32Array).slice() } };
}

/** max |a - b| over the reference's value range. */
function relDiff(ref: Float32Array, got: Float32Array): { maxAbs: number; range: number; rel: number } {
  let maxAbs = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i] - got[i])); lo = Math.min(lo, ref[i]); hi = Math.max(hi, ref[i]); }
  return { maxAbs, range: hi - lo, rel: maxAbs / Math.max(hi - lo, 1e-12) };
}

const missing = CASES.filter((c) => !existsSync(c.model)).map((c) => c.model);
const skipAll = missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : undefined;

describe('TFLite export: FP32/FP16 parity with onnxruntime in LiteRT.js', () => {
  for (const c of CASES) {
    for (const precision of ['fp32', 'fp16'] as const) {
      test(`${c.name} ${precision}`, async (t) => {
        if (skipAll) return t.skip(skipAll);
        const meta = await loadModelMetadata(c.model);
        const r = exportTflite(readFileSync(c.model), { precision });
        assert.equal(r.transposesLeft, 0, 'the NHWC graph needs no TRANSPOSE op');
        const path = join(dir, `${c.name}-${precision}.tflite`);
        writeFileSync(path, r.bytes);
        const tfl = await new TfliteAdapter().createSession({ modelPath: path });
        const ort = await new OrtAdapter().createSession({ modelPath: c.model });
        try {
          const frames = await collect(c.frames, meta);
          for (const f of precision === 'fp32' ? frames : frames.slice(0, 1)) {
            const a = await ort.run(feed(meta, f));
            const b = await tfl.run(feed(meta, f));
            for (const o of r.outputs) {
              const d = relDiff(a.outputs[o.name].data as Float32Array, b.outputs[o.name].data as Float32Array);
              t.diagnostic(`${o.name}: max abs diff ${d.maxAbs.toExponential(2)} over range ${d.range.toFixed(3)} (${d.rel.toExponential(2)} of range)`);
              assert.ok(d.rel <= 1e-3, `${c.name} ${precision} ${o.name} differs by ${d.rel} of its range`);
            }
          }
        } finally {
          await tfl.dispose();
          await ort.dispose();
        }
        if (c.name === 'coco-centernet') assert.deepEqual(r.dropped.map((d) => d.output), ['tower_0/detections']);
      });
    }
  }
});

/**
 * The INT8 file against the FP32 ONNX model through `fleetctl model evaluate`'s own path
 * (evaluateModels: the reference in onnxruntime, the TFLite candidate in LiteRT.js as the agent runs
 * it, decoded by the decoder the export writes into its metadata, at half the score threshold).
 * The FP32 TFLite file's parity with onnxruntime is the test above.
 */
async function agreementWithFp32(name: string, modelPath: string, meta: ModelMetadata, int8: { bytes: Uint8Array; outputs: Array<{ name: string; shape: number[] }> }, evalSel: Case['frames']): Promise<EvaluateReport> {
  const path = join(dir, `${name}-int8.tflite`);
  writeFileSync(path, int8.bytes);
  const decoder = decoderForExport(meta, decodeModel(Uint8Array.from(readFileSync(modelPath))).graph.outputs.map((o) => o.name), int8.outputs, 'nhwc').spec;
  return evaluateModels({ reference: modelPath, candidate: path, candidateMeta: { ...meta, decoder }, data: evalSel });
}

// The INT8 BlazeFace agreement test and the mixed-precision test calibrate BlazeFace on the same three
// photos: one calibration per model, frames and method serves both (exportTflite builds a new file
// from it each time; the mixed-precision test already builds two from one).
const calibrations = new Map<string, ReturnType<typeof tfliteRanges>>();
function calibrated(model: string, frames: Case['frames'], meta: ModelMetadata, method?: CalibrationMethod): ReturnType<typeof tfliteRanges> {
  const key = JSON.stringify([model, frames, method]);
  let cal = calibrations.get(key);
  if (!cal) calibrations.set(key, (cal = tfliteRanges({ onnxBytes: readFileSync(model), frames, preprocess: meta.preprocess, method })));
  return cal;
}

describe('TFLite export: INT8 detections agree with FP32', () => {
  test('blazeface-back int8 (minmax) mAP@0.5 against FP32 ≥ 0.9', async (t) => {
    if (skipAll) return t.skip(skipAll);
    const c = { ...CASES[0], calib: { source: 'assets/images/faces', maxFrames: 3 }, eval: { source: 'assets/images/faces', maxFrames: 6 } };
    const meta = await loadModelMetadata(c.model);
    const cal = await calibrated(c.model, c.calib, meta);
    const q = exportTflite(cal.onnxBytes, { precision: 'int8', ranges: cal.ranges, unroundedOnnx: cal.unroundedBytes });
    const r = await agreementWithFp32(`${c.name}-map`, c.model, meta, q, c.eval);
    reportAgreement(t, r, `${cal.frames} calibration frames; ${q.floatIslands} convs kept float; INT8 file ${q.bytes.length} bytes`);
    assert.equal(r.frames, c.eval.maxFrames);
  });

  // The CenterNet through `fleetctl model export` itself (float islands measured, --float-islands auto),
  // its file then evaluated with the metadata the export wrote: one calibration serves the CLI's checks
  // and the agreement. Calibrated by percentile, which measured better than minmax for it (0.93-1.00
  // over five sets of vtest frames, minmax 0.90-1.00 with one set at 0.896; the ORT QDQ build measures
  // the other way round, docs/benchmarks.md item 4). Misses are rare classes (1-3 FP32 detections each
  // weigh as much as person). 32 evaluation frames, not 16: on 16, builds of equal quality (GPTQ's
  // moments summed in another order) read 0.94, 0.92 and 0.88, one skis box of two deciding; on 32
  // they read 0.950 and 0.948.
  test('coco-centernet int8 (percentile) through fleetctl model export: islands measured and left out, a third of FP32, mAP@0.5 against FP32 ≥ 0.9', async (t) => {
    if (skipAll) return t.skip(skipAll);
    const c = CASES[1];
    const out = join(dir, 'cn-cli', 'model.tflite');
    const ex = await runCli('fleetctl', ['model', 'export', '--model', c.model, '--target', 'tflite', '--precision', 'int8', '--calib', 'assets/video/vtest.avi', '--frames', '3', '--stride', '150', '--method', 'percentile', '-o', out, '--json'], { timeoutMs: 240_000 });
    assert.equal(ex.code, 0, ex.stderr);
    const report = JSON.parse(ex.stdout.trim().split('\n').pop()!) as { sizeBytes: number; calibrationFrames: number; notes: string[] };
    const islands = report.notes.find((n) => n.startsWith('INT8 float islands'));
    t.diagnostic(`coco-centernet: ${islands}`);
    // BlazeFace keeps them (export-cli.test.ts); here they do not lift the worst output.
    assert.match(islands ?? '', /: left out/);
    // Without islands the INT8 CenterNet is about a third of FP32; with them it was 0.62×, larger than FP16.
    assert.ok(report.sizeBytes < 0.4 * readFileSync(c.model).length, `${report.sizeBytes} bytes`);
    // Evaluated with the metadata the export wrote beside it (the CenterNet-heads decoder; without it
    // evaluate would read the reference's, which decodes the dropped tail).
    assert.ok(existsSync(join(dir, 'cn-cli', 'model.meta.json')), 'the export writes the metadata beside the file');
    const evalSel = { source: 'assets/video/vtest.avi', maxFrames: 32, stride: 22, offset: 20 };
    const r = await evaluateModels({ reference: c.model, candidate: out, data: evalSel });
    reportAgreement(t, r, `${report.calibrationFrames} calibration frames; INT8 file ${report.sizeBytes} bytes`);
    assert.equal(r.frames, evalSel.maxFrames);
  });
});

function reportAgreement(t: { diagnostic(msg: string): void }, r: EvaluateReport, about: string): void {
  const map = r.agreementMap / 100;
  t.diagnostic(`${about}; ${r.frames} evaluation frames; FP32 ${r.referenceDetections} detections; mAP@0.5 ${map.toFixed(3)}`);
  t.diagnostic(`AP per class (FP32 detections/INT8 detections): ${r.perClass.filter((a) => a.referenceCount > 0).map((a) => `${a.label} ${a.referenceCount}/${a.candidateCount} ${(a.agreementAp / 100).toFixed(2)}`).join(', ')}`);
  assert.ok(r.referenceDetections > 0, 'the FP32 model detects something to compare with');
  assert.ok(map >= 0.9, `INT8 mAP@0.5 against FP32 is ${map.toFixed(3)}`);
}

describe('TFLite export: INT8 mixed precision from the sensitivity search', () => {
  test('blazeface-back --target-snr keeps the chosen activations float (more float ops, larger file) and still agrees with FP32', async (t) => {
    if (skipAll) return t.skip(skipAll);
    const c = CASES[0];
    const meta = await loadModelMetadata(c.model);
    const calib = { source: 'assets/images/faces', maxFrames: 3 };
    const cal = await calibrated(c.model, calib, meta);
    const keepFloat = await tfliteKeepFloat(cal.onnxBytes, calib, meta.preprocess, 30);
    const plain = exportTflite(cal.onnxBytes, { precision: 'int8', ranges: cal.ranges, unroundedOnnx: cal.unroundedBytes });
    const mixed = exportTflite(cal.onnxBytes, { precision: 'int8', ranges: cal.ranges, keepFloat, unroundedOnnx: cal.unroundedBytes });
    t.diagnostic(`${keepFloat.length} activations kept float; float ops ${plain.floatIslands} → ${mixed.floatIslands}; ${plain.bytes.length} → ${mixed.bytes.length} bytes`);
    assert.ok(keepFloat.length > 0, 'a 30 dB target keeps something float');
    assert.ok(mixed.floatIslands > plain.floatIslands, 'the ops reading kept activations run float');
    assert.ok(mixed.bytes.length > plain.bytes.length, 'float weights make the file larger');
    const map = (await agreementWithFp32('bf-mixed', c.model, meta, mixed, { source: 'assets/images/faces', maxFrames: 6 })).agreementMap / 100;
    assert.ok(map >= 0.9, `mixed INT8 mAP@0.5 against FP32 is ${map.toFixed(3)}`);
  });
});

describe('TFLite export: the same files load in Debian Arm NN', () => {
  test('pyarmnn (CpuRef) loads both exported FP32 files and runs BlazeFace with matching outputs', async (t) => {
    if (skipAll) return t.skip(skipAll);
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import pyarmnn'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip(`python3-pyarmnn is not installed (apt-get install python3-pyarmnn libarmnn-cpuref-backend22): ${probe.stderr.trim().split('\n').pop()}`);
    for (const c of CASES) {
      const meta = await loadModelMetadata(c.model);
      const r = exportTflite(readFileSync(c.model), { precision: 'fp32' });
      const path = join(dir, `${c.name}-armnn.tflite`);
      writeFileSync(path, r.bytes);
      const [f] = await collect({ ...c.frames, maxFrames: 1 }, meta);
      const inputPath = join(dir, `${c.name}.f32`);
      writeFileSync(inputPath, f.data as Float32Array);
      // CpuRef is a slow reference backend: CenterNet (512x512) is parsed and optimized, not run.
      const loadOnly = c.name === 'coco-centernet';
      const run = spawnSync('/usr/bin/python3', ['test/helpers/armnn-run.py', path, loadOnly ? '--load-only' : inputPath, dir], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(run.status, 0, `Arm NN failed on ${c.name}: ${run.stderr}`);
      const info = JSON.parse(run.stdout.trim().split('\n').pop()!) as { outputs: Array<{ name: string; shape: number[] }> };
      if (loadOnly) {
        assert.deepEqual(info.outputs.map((o) => [o.name, o.shape]), r.outputs.map((o) => [o.name, o.shape]));
        t.diagnostic(`${c.name}: Arm NN parsed and optimized it for CpuRef; outputs ${info.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')}`);
        continue;
      }
      const tfl = await new TfliteAdapter().createSession({ modelPath: path });
      try {
        const ref = await tfl.run(feed(meta, f));
        info.outputs.forEach((o, k) => {
          const got = new Float32Array(Uint8Array.from(readFileSync(join(dir, `${k}.f32`))).buffer);
          const d = relDiff(ref.outputs[o.name].data as Float32Array, got);
          t.diagnostic(`${c.name} ${o.name} [${o.shape.join(',')}]: Arm NN vs LiteRT.js ${d.rel.toExponential(2)} of range`);
          assert.ok(d.rel <= 1e-3);
        });
      } finally {
        await tfl.dispose();
      }
    }
  });
});
