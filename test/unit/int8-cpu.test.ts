/**
 * The agent's warning for a full-range INT8 build on an x86 CPU without VNNI (agent/src/model/int8-cpu.ts),
 * the metadata-only ONNX reader it uses, and the warning in `edge-agent detect`'s log on this machine.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel, readMetadataProps } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, emptyGraph, floatTensor, type OnnxModel } from '../../fleet-server/src/convert/onnx/model.js';
import { fullRangeInt8Warning, int8CpuFlags, saturatesFullRangeInt8 } from '../../agent/src/model/int8-cpu.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-int8-cpu-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function modelWith(props: Record<string, string>): OnnxModel {
  const graph = emptyGraph('g');
  graph.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [1, 4] });
  graph.outputs.push({ name: 'y', elemType: DataType.FLOAT, shape: [1, 4] });
  // A large initializer, so that the metadata sits behind a graph the reader must skip, not decode.
  graph.initializers.set('k', floatTensor([4096], new Float32Array(4096).fill(0.5)));
  graph.nodes.push({ opType: 'Mul', name: 'm', inputs: ['x', 'x'], outputs: ['y'], attributes: [] });
  return { irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: props, graph };
}

function writeModel(name: string, props: Record<string, string>): string {
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, encodeModel(modelWith(props)));
  return path;
}

const FULL = { 'edgefleet.precision': 'int8', 'edgefleet.calibration': 'minmax', 'edgefleet.target': 'cpu', 'edgefleet.weightRange': 'full' };
const AVX2 = { arch: 'x64', flags: ['avx2', 'avx512bw'] };
const FACE = 'assets/models/blazeface-back/model.onnx';

test('readMetadataProps reads what decodeModel reads, behind the graph, and nothing from a model without any', () => {
  const bytes = encodeModel(modelWith(FULL));
  assert.deepEqual(readMetadataProps(bytes), FULL);
  assert.deepEqual(readMetadataProps(bytes), decodeModel(bytes).metadataProps);
  assert.deepEqual(readMetadataProps(encodeModel(modelWith({}))), {});
  const sample = 'assets/models/coco-centernet/model.onnx';
  if (existsSync(sample)) {
    const real = new Uint8Array(readFileSync(sample));
    assert.deepEqual(readMetadataProps(real), decodeModel(real).metadataProps);
  }
});

test('int8CpuFlags reads the int8 dot-product features from /proc/cpuinfo text', () => {
  const cpuinfo = 'processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni sha_ni\n\nprocessor\t: 1\n';
  assert.deepEqual(int8CpuFlags(cpuinfo), ['avx2', 'avx512bw', 'avx512_vnni']);
  assert.deepEqual(int8CpuFlags('processor : 0\nFeatures : fp asimd asimddp\n'), [], 'ARM lists Features, not flags');
});

test('only x86 without VNNI saturates full-range int8 weights; unknown flags claim nothing', () => {
  assert.equal(saturatesFullRangeInt8(AVX2), true);
  assert.equal(saturatesFullRangeInt8({ arch: 'x64', flags: ['avx2'] }), true);
  assert.equal(saturatesFullRangeInt8({ arch: 'x64', flags: ['avx2', 'avx512bw', 'avx512_vnni'] }), false);
  assert.equal(saturatesFullRangeInt8({ arch: 'x64', flags: ['avx2', 'avx_vnni'] }), false);
  assert.equal(saturatesFullRangeInt8({ arch: 'arm64', flags: undefined }), false);
  assert.equal(saturatesFullRangeInt8({ arch: 'x64', flags: undefined }), false);
});

test('the agent warns for a full-range INT8 build on the CPU provider of an x86 CPU without VNNI, and only then', async () => {
  const full = writeModel('full', FULL);
  const warning = await fullRangeInt8Warning(full, 'cpu', AVX2);
  assert.ok(warning, 'a warning');
  assert.match(warning, /full-range weights/);
  assert.match(warning, /no VNNI \(flags: avx2 avx512bw\)/);
  assert.match(warning, /--weight-range reduced/);
  assert.equal(await fullRangeInt8Warning(full, 'cpu', { arch: 'x64', flags: ['avx2', 'avx512_vnni'] }), undefined, 'VNNI CPU');
  assert.equal(await fullRangeInt8Warning(full, 'cpu', { arch: 'arm64', flags: undefined }), undefined, 'Jetson');
  assert.equal(await fullRangeInt8Warning(full, 'tensorrt', AVX2), undefined, 'TensorRT provider');
  assert.equal(await fullRangeInt8Warning(writeModel('reduced', { ...FULL, 'edgefleet.weightRange': 'reduced' }), 'cpu', AVX2), undefined, 'reduced build');
  assert.equal(await fullRangeInt8Warning(writeModel('fp32', {}), 'cpu', AVX2), undefined, 'FP32 model');
  assert.equal(await fullRangeInt8Warning(join(dir, 'model.tflite'), 'cpu', AVX2), undefined, 'not ONNX');
  const corrupt = join(dir, 'corrupt.onnx');
  writeFileSync(corrupt, Buffer.from([0x0a, 0xff, 0xff, 0xff]));
  assert.equal(await fullRangeInt8Warning(corrupt, 'cpu', AVX2), undefined, 'a file it cannot scan is not refused here');
});

test('edge-agent detect logs the warning on this machine exactly when its CPU saturates full-range int8 weights', { skip: existsSync(FACE) ? false : `${FACE} missing (run ./scripts/setup.sh)` }, async () => {
  // BlazeFace's FP32 file with a full-range INT8 build's metadata: the warning reads only the metadata.
  const model = decodeModel(new Uint8Array(readFileSync(FACE)));
  model.metadataProps = { ...model.metadataProps, ...FULL };
  const path = join(dir, 'face.onnx');
  writeFileSync(path, encodeModel(model));
  copyFileSync(FACE.replace(/\.onnx$/, '.meta.json'), join(dir, 'face.meta.json'));
  const r = await runCli('edge-agent', ['detect', '--model', path, '--image', 'assets/images/faces/sample1.jpg', '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const flags = int8CpuFlags();
  const saturates = saturatesFullRangeInt8({ arch: process.arch, flags: flags.length ? flags : undefined });
  const warned = /full-range weights .* no VNNI/.test(r.stderr);
  assert.equal(warned, saturates, `this CPU (${process.arch}; ${flags.join(' ') || 'no int8 flags read'}) ${saturates ? 'saturates' : 'does not saturate'}; stderr: ${r.stderr.slice(-1000)}`);
  console.log(`this CPU ${saturates ? 'saturates: the warning was logged' : 'does not saturate: no warning'} (${process.arch}; ${flags.join(' ') || 'no int8 flags read'})`);
});
