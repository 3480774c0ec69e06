/** `fleetctl model export` end to end: artifacts, copied metadata, the JSON report, and usage errors. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandOutcome, runCli } from '../helpers/cli.js';
import { decodeMlModel } from '../../fleet-server/src/export/coreml/proto.js';

const MODEL = 'assets/models/blazeface-back/model.onnx';
const dir = mkdtempSync(join(tmpdir(), 'ef-export-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('fleetctl model export writes TFLite and Core ML artifacts with metadata and a report', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const tfl = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'tflite', '--precision', 'fp16', '-o', join(dir, 'bf.tflite'), '--json'], { timeoutMs: 60_000 });
  assert.equal(tfl.code, 0, tfl.stderr);
  const report = JSON.parse(tfl.stdout.trim().split('\n').pop()!) as { ok: boolean; sizeBytes: number; outputs: Array<{ name: string }>; sha256: string };
  assert.ok(report.ok);
  assert.deepEqual(report.outputs.map((o) => o.name).sort(), ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0']);
  const bytes = readFileSync(join(dir, 'bf.tflite'));
  assert.equal(bytes.subarray(4, 8).toString(), 'TFL3');
  assert.equal(bytes.length, report.sizeBytes);
  assert.ok(existsSync(join(dir, 'bf.meta.json')), 'metadata copied next to the artifact');

  const cml = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'coreml', '--precision', 'int8', '-o', join(dir, 'bf.mlmodel')], { timeoutMs: 60_000 });
  assert.equal(cml.code, 0, cml.stderr);
  assert.match(cml.stdout, /wrote .*bf\.mlmodel \(coreml int8/);
  assert.equal(decodeMlModel(readFileSync(join(dir, 'bf.mlmodel'))).layers.length > 50, true);
});

interface DetectJson { provider: string; detections: Array<{ label: string; score: number; box: { x: number; y: number; w: number; h: number } }> }

async function detectJson(model: string, image: string): Promise<DetectJson> {
  const r = await runCli('edge-agent', ['detect', '--model', model, '--image', image, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as DetectJson;
}

test('an exported TFLite file runs in the agent (LiteRT.js) with the decoder its metadata names, and detects what the ONNX model detects', async (t) => {
  const cases = [
    { name: 'cn', model: 'assets/models/coco-centernet/model.onnx', image: join(dir, 'vtest-frame.png'), label: 'person' },
    { name: 'bf', model: MODEL, image: 'assets/images/faces/sample1.jpg', label: 'face' },
  ];
  const absent = [...cases.map((c) => c.model), 'assets/video/vtest.avi'].filter((p) => !existsSync(p));
  if (absent.length) return t.skip(`${absent.join(', ')} missing (run ./scripts/setup.sh)`);
  // Frame 50 of vtest.avi (people walking), read by the agent's own capture.
  const { videoFileFrames } = await import('../../agent/src/capture/file-frames.js');
  const sharp = (await import('sharp')).default;
  let frame;
  for await (const f of videoFileFrames({ path: 'assets/video/vtest.avi', maxFrames: 51 })) frame = f;
  assert.equal(frame?.index, 50);
  await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).png().toFile(cases[0].image);
  for (const c of cases) {
    const out = join(dir, `${c.name}-run.tflite`);
    const ex = await runCli('fleetctl', ['model', 'export', '--model', c.model, '--target', 'tflite', '--precision', 'fp32', '-o', out], { timeoutMs: 60_000 });
    assert.equal(ex.code, 0, ex.stderr);
    const decoder = (JSON.parse(readFileSync(join(dir, `${c.name}-run.meta.json`), 'utf8')) as { decoder: { type: string } }).decoder;
    // CenterNet's TopK/Gather tail is not exported: the metadata switches to decoding its heads.
    assert.equal(decoder.type, c.name === 'cn' ? 'centernet-heads' : 'blazeface');
    const [tfl, onnx] = [await detectJson(out, c.image), await detectJson(c.model, c.image)];
    assert.equal(tfl.provider, 'wasm');
    t.diagnostic(`${c.name}: TFLite ${tfl.detections.length} detections, ONNX ${onnx.detections.length}`);
    assert.ok(onnx.detections.filter((d) => d.label === c.label).length >= 2, `the ONNX model finds ${c.label}s in ${c.image}`);
    assert.equal(tfl.detections.length, onnx.detections.length);
    tfl.detections.forEach((d, i) => {
      const o = onnx.detections[i];
      assert.equal(d.label, o.label);
      assert.ok(Math.abs(d.score - o.score) < 1e-3, `score ${d.score} vs ${o.score}`);
      for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - o.box[k]) <= 0.2, `${c.name} detection ${i} ${k}: ${d.box[k]} vs ${o.box[k]}`);
    });
  }
});

test('CenterNet to Core ML gets the NCHW heads decoder; an export next to its source that needs another decoder is refused', async (t) => {
  const CN = 'assets/models/coco-centernet';
  if (!existsSync(`${CN}/model.onnx`)) return t.skip(`${CN}/model.onnx missing (run ./scripts/setup.sh)`);
  const cml = await runCli('fleetctl', ['model', 'export', '--model', `${CN}/model.onnx`, '--target', 'coreml', '--precision', 'fp16', '-o', join(dir, 'cn.mlmodel')], { timeoutMs: 60_000 });
  assert.equal(cml.code, 0, cml.stderr);
  const decoder = (JSON.parse(readFileSync(join(dir, 'cn.meta.json'), 'utf8')) as { decoder: { type: string; layout: string; stride: number } }).decoder;
  assert.deepEqual([decoder.type, decoder.layout, decoder.stride], ['centernet-heads', 'nchw', 4]);
  // model.onnx and model.tflite in one directory would share model.meta.json.
  const { copyFileSync, mkdirSync } = await import('node:fs');
  const same = join(dir, 'same');
  mkdirSync(same);
  for (const f of ['model.onnx', 'model.meta.json']) copyFileSync(`${CN}/${f}`, join(same, f));
  const r = await runCli('fleetctl', ['model', 'export', '--model', join(same, 'model.onnx'), '--target', 'tflite', '--precision', 'fp32', '-o', join(same, 'model.tflite')], { timeoutMs: 60_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /would share .*model\.meta\.json[\s\S]*another directory/);
  assert.equal(existsSync(join(same, 'model.tflite')), false, 'nothing written');
});

test('fleetctl model export refuses bad arguments with a usage error', async () => {
  // One through the binary (exit code 2, message on stderr), the rest in this process (commandOutcome).
  const snrOnFp16 = await runCli('fleetctl', ['model', 'export', '--model', MODEL, '--target', 'tflite', '--precision', 'fp16', '--target-snr', '25', '-o', join(dir, 'x.tflite')]);
  assert.equal(snrOnFp16.code, 2, snrOnFp16.stderr);
  assert.match(snrOnFp16.stderr, /--target-snr applies to --target tflite --precision int8 only/);
  const { command } = await import('../../fleet-server/src/cli/commands/model-export.js');
  const noCalib = await commandOutcome(command, ['--model', MODEL, '--target', 'tflite', '--precision', 'int8', '-o', join(dir, 'x.tflite')]);
  assert.notEqual(noCalib.code, 0);
  assert.match(noCalib.message, /--calib/);
  const badTarget = await commandOutcome(command, ['--model', MODEL, '--target', 'onnx', '-o', join(dir, 'x')]);
  assert.notEqual(badTarget.code, 0);
  assert.match(badTarget.message, /Expected --target tflite or coreml/);
  // Frames given to an export that reads none were ignored without a word.
  const calibOnFp32 = await commandOutcome(command, ['--model', MODEL, '--target', 'coreml', '--precision', 'int8', '--calib', 'assets/images/faces', '-o', join(dir, 'x.mlmodel')]);
  assert.equal(calibOnFp32.code, 2, calibOnFp32.message);
  assert.match(calibOnFp32.message, /--calib applies to --target tflite --precision int8 only \(a coreml int8 export reads no frames: Core ML int8 quantizes the weights alone\); drop --calib/);
  const badIslands = await commandOutcome(command, ['--model', MODEL, '--target', 'tflite', '--precision', 'int8', '--calib', 'assets/images/faces', '--float-islands', 'maybe', '-o', join(dir, 'x.tflite')]);
  assert.equal(badIslands.code, 2, badIslands.message);
  assert.match(badIslands.message, /Expected --float-islands auto, on or off/);
});

test('INT8 TFLite float islands are measured: kept where they lift the worst output (BlazeFace; the CenterNet leaves them out: export-tflite.test.ts)', async (t) => {
  if (!existsSync(MODEL)) return t.skip(`${MODEL} missing (run ./scripts/setup.sh)`);
  const exportInt8 = async (model: string, calib: string[], name: string, islands: string) => {
    const r = await runCli('fleetctl', ['model', 'export', '--model', model, '--target', 'tflite', '--precision', 'int8', ...calib, '--float-islands', islands, '-o', join(dir, name, 'model.tflite'), '--json'], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { sizeBytes: number; notes: string[] };
  };
  const faces = ['--calib', 'assets/images/faces', '--frames', '3'];
  const [auto, on, off] = [await exportInt8(MODEL, faces, 'bf-auto', 'auto'), await exportInt8(MODEL, faces, 'bf-on', 'on'), await exportInt8(MODEL, faces, 'bf-off', 'off')];
  const note = auto.notes.find((n) => n.startsWith('INT8 float islands'));
  t.diagnostic(`blazeface: ${note}`);
  assert.match(note ?? '', /: kept/);
  assert.equal(auto.sizeBytes, on.sizeBytes, 'auto kept the islands');
  assert.ok(off.sizeBytes < on.sizeBytes, 'float islands carry float weights');
  assert.equal(on.notes.some((n) => n.startsWith('INT8 float islands')), false, '--float-islands on does not measure');
});
