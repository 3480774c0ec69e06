/**
 * fleetctl model export replaces an earlier export whole or not at all. With plain writes, a write
 * that failed part way (a full disk; here a file-size limit, `ulimit -f`) left a truncated
 * model.tflite beside the earlier model.meta.json; and a source without metadata left the earlier
 * metadata beside the new file, describing another model.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph, floatTensor } from '../../fleet-server/src/convert/onnx/model.js';
import { runCli, binaryEntry } from '../helpers/cli.js';
import { exportModel } from '../../fleet-server/src/export/export-model.js';
import sharp from 'sharp';

const dir = mkdtempSync(join(tmpdir(), 'ef-export-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** NHWC [1, 8, 8, 3] → 1×1 Conv with `channels` outputs (4·3·channels bytes of weights), in its own directory with or without metadata. */
function source(name: string, channels: number, withMeta: boolean, preprocess: Record<string, unknown> = {}): string {
  const g = emptyGraph(name);
  g.inputs.push({ name: 'x', elemType: 1, shape: [1, 8, 8, 3] });
  g.outputs.push({ name: 'y', elemType: 1, shape: [1, 8, 8, channels] });
  g.initializers.set('w', floatTensor([channels, 3, 1, 1], Array.from({ length: channels * 3 }, (_, k) => Math.sin(k))));
  g.nodes.push(
    { opType: 'Transpose', name: 't1', inputs: ['x'], outputs: ['xc'], attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }] },
    { opType: 'Conv', name: 'cv', inputs: ['xc', 'w'], outputs: ['c'], attributes: [] },
    { opType: 'Transpose', name: 't2', inputs: ['c'], outputs: ['y'], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
  );
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, 'model.onnx'), encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g }));
  if (withMeta) {
    writeFileSync(join(dir, name, 'model.meta.json'), JSON.stringify({
      name, version: '1.0.0', task: 'text-detect', input: 'x',
      preprocess: { width: 8, height: 8, layout: 'NHWC', channelOrder: 'RGB', resize: 'stretch', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'float32', ...preprocess },
      decoder: { type: 'db', output: 'y' }, labels: ['text'],
    }));
  }
  return join(dir, name, 'model.onnx');
}

/** fleetctl under a file-size limit (bash `ulimit -f`, 1024-byte blocks): writes past it fail with EFBIG, as on a full disk. */
function fleetctlLimited(limitKiB: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ulimit -f ${limitKiB} && exec "$0" "$@"`, process.execPath, binaryEntry('fleetctl'), ...args], {
      env: { ...process.env, EF_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`fleetctl ${args.join(' ')} hung`)); }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

test('an export that fails while writing leaves the earlier export whole; a source without metadata removes the earlier metadata', async () => {
  const out = join(dir, 'out', 'model.tflite');
  const metaOut = join(dir, 'out', 'model.meta.json');
  const first = await runCli('fleetctl', ['model', 'export', '--model', source('small', 4, true), '--target', 'tflite', '-o', out]);
  assert.equal(first.code, 0, first.stderr);
  const [model1, meta1] = [readFileSync(out), readFileSync(metaOut, 'utf8')];
  // 64 KiB limit: the big model's 120 KB of weights cannot be written.
  const failed = await fleetctlLimited(64, ['model', 'export', '--model', source('big', 10_000, true), '--target', 'tflite', '-o', out]);
  assert.notEqual(failed.code, 0, 'the export fails');
  assert.match(failed.stderr, /EFBIG|file too large/i);
  assert.deepEqual(readFileSync(out), model1, 'the earlier model.tflite is untouched');
  assert.equal(readFileSync(metaOut, 'utf8'), meta1, 'the earlier metadata still describes it');
  assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['model.meta.json', 'model.tflite'], 'no partial temp file left');
  const bare = await runCli('fleetctl', ['model', 'export', '--model', source('bare', 2, false), '--target', 'tflite', '-o', out, '--json']);
  assert.equal(bare.code, 0, bare.stderr);
  assert.notDeepEqual(readFileSync(out), model1);
  assert.equal(existsSync(metaOut), false, 'no metadata describing another model beside the new file');
  assert.match(bare.stdout, /has no metadata, so the older .*model\.meta\.json .* was removed/);
});

test('preprocess.maxUpscale (a dynamic-size input) is left out of a TFLite export\'s metadata, and an export that would share it is refused', async () => {
  const src = source('upscale', 2, true, { multipleOf: 8, maxUpscale: 2 });
  const out = join(dir, 'upscale-out', 'model.tflite');
  const r = await exportModel({ modelPath: src, target: 'tflite', precision: 'fp32', outputPath: out });
  const meta = JSON.parse(readFileSync(join(dir, 'upscale-out', 'model.meta.json'), 'utf8')) as { preprocess: Record<string, unknown> };
  assert.equal(meta.preprocess.maxUpscale, undefined, 'the static 8×8 TFLite input is filled by every frame');
  assert.equal(meta.preprocess.multipleOf, 8);
  assert.ok(r.notes.some((n) => /preprocess\.maxUpscale left out: the tflite input is a static 8×8/.test(n)), r.notes.join('; '));
  await assert.rejects(exportModel({ modelPath: src, target: 'tflite', precision: 'fp32', outputPath: join(dir, 'upscale', 'model.tflite') }),
    /would share .*upscale\/model\.meta\.json with .*its input has a static shape and that metadata's preprocess\.maxUpscale shrinks the input per frame/);
  assert.equal(existsSync(join(dir, 'upscale', 'model.tflite')), false);
  // INT8: the calibration frames fill the static input too. A 4×4 photo under maxUpscale 1 would be fed
  // to the model at 4×4, which its [1, 8, 8, 3] input refuses.
  const calib = join(dir, 'upscale-calib');
  mkdirSync(calib);
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toFile(join(calib, 'a.png'));
  const one = source('upscale-one', 2, true, { maxUpscale: 1 });
  const q = await exportModel({ modelPath: one, target: 'tflite', precision: 'int8', calib: { source: calib, maxFrames: 1 }, outputPath: join(dir, 'upscale-int8', 'model.tflite') });
  assert.equal(q.calibrationFrames, 1);
  assert.deepEqual(q.inputs[0].shape, [1, 8, 8, 3]);
});
