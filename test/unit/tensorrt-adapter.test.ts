/** TensorRT (Jetson) adapter logic with an injected spawn: trtexec command lines, version parsing, the engine cache, the EPContext wrapper, errors that name what is missing. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as nodeSpawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTrtexecArgs, parseTrtexecVersion, findTrtexec } from '../../platform-adapters/tensorrt/trtexec.js';
import { runCommand, TensorRtAdapter, type SpawnFn } from '../../platform-adapters/tensorrt/adapter.js';
import { EngineCache, entryName } from '../../platform-adapters/tensorrt/engine-cache.js';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph } from '../../fleet-server/src/convert/onnx/model.js';
import type { AdapterSession } from '../../platform-adapters/contract.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { fakeTrtexec } from '../helpers/fake-trtexec.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-trt-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tinyOnnx(name: string, metadataProps: Record<string, string> = {}): string {
  const g = emptyGraph('tiny');
  g.inputs.push({ name: 'x', elemType: 1, shape: [1, 3] });
  g.outputs.push({ name: 'y', elemType: 1, shape: [1, 3] });
  g.nodes.push({ opType: 'Relu', name: 'r', inputs: ['x'], outputs: ['y'], attributes: [] });
  const p = join(dir, name);
  writeFileSync(p, encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps, graph: g }));
  return p;
}

const fakeSession = (): AdapterSession => ({ info: { inputs: [], outputs: [], requestedProviders: ['tensorrt'], provider: 'tensorrt', fallbacks: [] }, run: async () => ({ outputs: {}, inferMs: 0 }), dispose: async () => undefined });

test('parses TensorRT versions from trtexec banners (8.x, 10.x, dotted)', () => {
  assert.deepEqual(parseTrtexecVersion('&&&& RUNNING TensorRT.trtexec [TensorRT v8602] # trtexec'), { major: 8, minor: 6, patch: 2 });
  assert.deepEqual(parseTrtexecVersion('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec'), { major: 10, minor: 3, patch: 0 });
  assert.deepEqual(parseTrtexecVersion('[I] TensorRT version: 8.5.2'), { major: 8, minor: 5, patch: 2 });
  assert.equal(parseTrtexecVersion('command not found'), undefined);
});

test('trtexec command lines per precision and TensorRT version', () => {
  const base = { onnxPath: 'm.onnx', enginePath: 'e.engine' };
  assert.deepEqual(buildTrtexecArgs({ ...base, precision: 'fp16', version: { major: 8, minor: 6, patch: 2 }, workspaceMiB: 1024 }),
    ['--onnx=m.onnx', '--saveEngine=e.engine', '--fp16', '--memPoolSize=workspace:1024', '--skipInference']);
  assert.deepEqual(buildTrtexecArgs({ ...base, precision: 'int8', version: { major: 8, minor: 2, patch: 1 }, workspaceMiB: 512 }),
    ['--onnx=m.onnx', '--saveEngine=e.engine', '--int8', '--fp16', '--workspace=512', '--buildOnly']);
  assert.deepEqual(buildTrtexecArgs({ ...base, precision: 'fp32', version: { major: 10, minor: 3, patch: 0 }, timingCachePath: 't.cache' }),
    ['--onnx=m.onnx', '--saveEngine=e.engine', '--timingCacheFile=t.cache', '--skipInference']);
});

test('finds trtexec in JetPack\'s location, $TRTEXEC, or PATH', () => {
  const have = (set: string[]) => (p: string) => set.includes(p);
  assert.equal(findTrtexec({ PATH: '/usr/bin' }, have(['/usr/src/tensorrt/bin/trtexec'])), '/usr/src/tensorrt/bin/trtexec');
  assert.equal(findTrtexec({ TRTEXEC: '/opt/t/trtexec', PATH: '' }, have(['/opt/t/trtexec'])), '/opt/t/trtexec');
  assert.equal(findTrtexec({ PATH: '/x:/y' }, have(['/y/trtexec'])), '/y/trtexec');
  assert.equal(findTrtexec({ PATH: '' }, have([])), undefined);
});

test('builds once per model+version+precision, then loads from the cache; writes an EPContext wrapper', async () => {
  const model = tinyOnnx('relu.onnx');
  const fake = fakeTrtexec();
  const opened: string[] = [];
  const cacheDir = join(dir, 'cache1');
  const adapter = new TensorRtAdapter({
    spawn: fake.spawn, findTrtexec: () => '/usr/src/tensorrt/bin/trtexec', cacheDir, ortTensorRt: async () => ({ ok: true }), computeCapability: '87',
    openWrapper: async (_o, e) => { opened.push(e.wrapperPath); return fakeSession(); },
  });
  const s1 = await adapter.createSession({ modelPath: model, precision: 'fp16' });
  await s1.dispose();
  const builds = () => fake.calls.filter((c) => !c.args.includes('--help'));
  assert.equal(builds().length, 1);
  assert.ok(builds()[0].args.includes('--fp16'));
  await adapter.createSession({ modelPath: model, precision: 'fp16' });
  assert.equal(builds().length, 1, 'second session of the same model hits the cache');
  await adapter.createSession({ modelPath: model, precision: 'int8' });
  assert.equal(builds().length, 2, 'another precision is another engine');
  assert.ok(builds()[1].args.includes('--int8'));
  assert.equal(fake.calls.filter((c) => c.args.includes('--help')).length, 1, 'the version is probed once');
  // The wrapper: one EPContext node over the model's inputs/outputs, pointing at the engine next to it.
  const w = decodeModel(readFileSync(opened[0]));
  assert.equal(w.graph.nodes.length, 1);
  const n = w.graph.nodes[0];
  assert.equal(n.opType, 'EPContext');
  assert.equal(n.domain, 'com.microsoft');
  assert.deepEqual([n.inputs, n.outputs], [['x'], ['y']]);
  const attrs = Object.fromEntries(n.attributes.map((a) => [a.name, a.value]));
  assert.deepEqual(attrs, { main_context: 1, embed_mode: 0, ep_cache_context: 'model.engine', ep_sdk_version: '8.6.2', hardware_architecture: '87', source: 'TensorrtExecutionProvider' });
  assert.ok(w.opsetImports.some((o) => o.domain === 'com.microsoft'));
});

test('a changed model, a new TensorRT version or a damaged entry rebuilds', async () => {
  const cache = new EngineCache(join(dir, 'cache2'));
  const key = { modelSha256: 'a'.repeat(64), version: { major: 8, minor: 6, patch: 2 }, precision: 'fp16' as const };
  assert.equal(entryName(key), `${'a'.repeat(16)}-trt8.6.2-fp16`);
  assert.equal(await cache.lookup(key), undefined);
  const e = cache.entry(key);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(e.dir, { recursive: true });
  writeFileSync(e.enginePath, 'engine');
  writeFileSync(e.wrapperPath, 'wrapper');
  await cache.commit(key);
  assert.ok(await cache.lookup(key));
  assert.equal(await cache.lookup({ ...key, version: { major: 10, minor: 3, patch: 0 } }), undefined);
  writeFileSync(e.enginePath, 'truncated'); // size no longer matches the manifest
  assert.equal(await cache.lookup(key), undefined);
  writeFileSync(e.manifestPath, '{not json');
  assert.equal(await cache.lookup(key), undefined);
});

test('errors name what is missing or what trtexec said', async () => {
  const model = tinyOnnx('relu2.onnx');
  const noTrt = new TensorRtAdapter({ findTrtexec: () => undefined, ortTensorRt: async () => ({ ok: true }) });
  await assert.rejects(noTrt.createSession({ modelPath: model }), /trtexec was not found|needs: trtexec/);
  const failing = new TensorRtAdapter({ spawn: fakeTrtexec({ failBuild: true }).spawn, findTrtexec: () => '/usr/bin/trtexec', cacheDir: join(dir, 'cache3'), ortTensorRt: async () => ({ ok: true }) });
  await assert.rejects(failing.createSession({ modelPath: model, precision: 'fp16' }), /trtexec failed \(exit 1\).*fake parser failure/s);
  const cpuOnly = new TensorRtAdapter({ spawn: fakeTrtexec().spawn, findTrtexec: () => '/usr/bin/trtexec', cacheDir: join(dir, 'cache4'), ortTensorRt: async () => ({ ok: true }) });
  await assert.rejects(cpuOnly.createSession({ modelPath: model, providers: ['cpu'] }), /only the "tensorrt" provider/);
});

test('an INT8 build made for the CPU is refused before trtexec runs, naming the build TensorRT takes; a TensorRT build goes on', async () => {
  const fake = fakeTrtexec();
  const adapter = new TensorRtAdapter({ spawn: fake.spawn, findTrtexec: () => '/usr/bin/trtexec', cacheDir: join(dir, 'cache5'), ortTensorRt: async () => ({ ok: true }), openWrapper: async () => fakeSession() });
  const cpu = tinyOnnx('cpu-int8.onnx', { 'edgefleet.precision': 'int8', 'edgefleet.target': 'cpu' });
  await assert.rejects(adapter.createSession({ modelPath: cpu, precision: 'int8' }), /cpu-int8\.onnx is an INT8 build for onnxruntime's CPU kernels \(fleetctl model quantize --target cpu\), which TensorRT cannot run; build one with --target tensorrt/);
  assert.equal(fake.calls.length, 0, 'trtexec never ran');
  const trt = tinyOnnx('trt-int8.onnx', { 'edgefleet.precision': 'int8', 'edgefleet.target': 'tensorrt' });
  await (await adapter.createSession({ modelPath: trt, precision: 'int8' })).dispose();
  assert.equal(fake.calls.filter((c) => c.args.includes('--int8')).length, 1, 'the TensorRT build is built');
});

/** A trtexec stand-in that answers --help, then "builds" for five minutes; `ignoreTerm` makes it ignore SIGTERM. */
function hangingTrtexec(name: string, ignoreTerm = false): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh
case "$*" in *--help*) echo '&&&& RUNNING TensorRT.trtexec [TensorRT v8602] # trtexec --help'; exit 0;; esac
${ignoreTerm ? "trap '' TERM" : ''}
echo building; exec sleep 300
`, { mode: 0o755 });
  return p;
}

/** The real spawn, recording each child's pid. */
function recordingSpawn(): { spawn: SpawnFn; pids: number[] } {
  const pids: number[] = [];
  return { pids, spawn: (cmd, args) => { const c = nodeSpawn(cmd, args); pids.push(c.pid!); return c; } };
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('a trtexec build that runs past the timeout is stopped before the adapter gives up, so it does not go on using the GPU', async () => {
  const model = tinyOnnx('relu-hang.onnx');
  const rec = recordingSpawn();
  const adapter = new TensorRtAdapter({ spawn: rec.spawn, findTrtexec: () => hangingTrtexec('trtexec-hang'), cacheDir: join(dir, 'cache-hang'), ortTensorRt: async () => ({ ok: true }), buildTimeoutMs: 300 });
  await assert.rejects(adapter.ensureEngine(model, 'fp16'), /did not finish within 300 ms/);
  assert.equal(rec.pids.length, 2); // --help, then the build
  assert.equal(alive(rec.pids[1]), false, `trtexec (pid ${rec.pids[1]}) is still running after the timeout`);
});

test('a command that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
  const rec = recordingSpawn();
  const t0 = Date.now();
  // 1 s for the shell to reach its `trap '' TERM`: with 200 ms, a loaded machine's SIGTERM could
  // come first and end it, and the test would fail as if the grace had been skipped.
  await assert.rejects(runCommand(rec.spawn, hangingTrtexec('trtexec-stubborn', true), ['--onnx=m.onnx'], { timeoutMs: 1000, killGraceMs: 200 }), /did not finish within 1000 ms/);
  assert.ok(Date.now() - t0 >= 1200, 'rejected before the SIGKILL');
  assert.equal(alive(rec.pids[0]), false, `the command (pid ${rec.pids[0]}) is still running after SIGKILL`);
});

test('the probe says available only where this ONNX Runtime\'s TensorRT EP loads (npm builds list it, not bundled), so no engine is built for nothing', async () => {
  const model = tinyOnnx('relu-probe.onnx');
  const fake = fakeTrtexec();
  // Only trtexec is faked; the ONNX Runtime check is the real one.
  const adapter = new TensorRtAdapter({ spawn: fake.spawn, findTrtexec: () => '/usr/bin/trtexec', cacheDir: join(dir, 'cache-probe') });
  const probe = await adapter.probe();
  let loads = true;
  try {
    await (await new OrtAdapter().createSession({ modelPath: model, providers: ['tensorrt'] })).dispose();
  } catch {
    loads = false;
  }
  assert.equal(probe.available, loads, `probe ${JSON.stringify(probe)} but a session with providers ["tensorrt"] ${loads ? 'opens' : 'fails'}`);
  if (loads) return;
  assert.match(probe.reason!, /TensorRT execution provider/);
  await assert.rejects(adapter.createSession({ modelPath: model }), /TensorRT adapter needs/);
  assert.deepEqual(fake.calls, [], 'trtexec ran although the engine could not be loaded');
});
