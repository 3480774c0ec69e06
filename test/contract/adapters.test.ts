/**
 * One contract suite, run against every adapter that can run here: ONNX Runtime (CPU), TFLite
 * (LiteRT.js wasm) and a "jetson" TensorRT adapter whose trtexec is faked and whose engine session
 * delegates to ORT CPU (STYLE.md: fakes only for hardware that cannot be present, and they pass the
 * same suite). Core ML probes unavailable off Apple and must say why.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdapterSession, PlatformAdapter, TensorData, TensorInfo } from '../../platform-adapters/contract.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { TfliteAdapter } from '../../platform-adapters/tflite/adapter.js';
import { TensorRtAdapter } from '../../platform-adapters/tensorrt/adapter.js';
import { CoreMlAdapter } from '../../platform-adapters/coreml/adapter.js';
import { createAdapter, adapterNames } from '../../platform-adapters/index.js';
import { EdgeFleetError } from '../../agent/src/util/errors.js';
import { fakeTrtexec } from '../helpers/fake-trtexec.js';

const BLAZEFACE = 'assets/models/blazeface-back/model.onnx';
const MP_TFLITE = 'assets/tflite/face_detection_short_range.tflite';
const cacheDir = mkdtempSync(join(tmpdir(), 'ef-trt-contract-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

interface Subject {
  label: string;
  make: () => PlatformAdapter;
  modelPath: string;
  provider: string;
}

const SUBJECTS: Subject[] = [
  { label: 'onnxruntime (cpu)', make: () => new OrtAdapter(), modelPath: BLAZEFACE, provider: 'cpu' },
  { label: 'tflite (LiteRT.js wasm)', make: () => new TfliteAdapter(), modelPath: MP_TFLITE, provider: 'wasm' },
  {
    label: 'jetson (fake trtexec, engine session delegated to ORT cpu)',
    make: () => new TensorRtAdapter({
      spawn: fakeTrtexec().spawn, findTrtexec: () => '/usr/src/tensorrt/bin/trtexec', cacheDir,
      ortTensorRt: async () => ({ ok: true }),
      openWrapper: (opts) => new OrtAdapter().createSession({ ...opts, providers: ['cpu'] }),
    }),
    modelPath: BLAZEFACE,
    provider: 'cpu',
  },
];

function feedsFor(inputs: TensorInfo[], fill: (i: number) => number): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  for (const i of inputs) {
    const dims = i.dims.map((d) => (d > 0 ? d : 1));
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => fill(k));
    feeds[i.name] = { type: 'float32', dims, data };
  }
  return feeds;
}

for (const s of SUBJECTS) {
  describe(`adapter contract: ${s.label}`, () => {
    let adapter: PlatformAdapter;
    let session: AdapterSession | undefined;
    let skip: string | undefined;
    before(async () => {
      if (!existsSync(s.modelPath)) { skip = `${s.modelPath} is missing (run ./scripts/setup.sh)`; return; }
      adapter = s.make();
      const p = await adapter.probe();
      if (!p.available) { skip = `adapter unavailable here: ${p.reason}`; return; }
      session = await adapter.createSession({ modelPath: s.modelPath, providers: adapter.capabilities().providers.slice(0, 1), warmUp: true });
    });
    after(async () => { await session?.dispose(); });

    test('capabilities name providers, precisions and formats', (t) => {
      if (skip) return t.skip(skip);
      const c = adapter.capabilities();
      assert.ok(c.providers.length > 0 && c.precisions.length > 0 && c.formats.length > 0);
    });

    test('session describes inputs and outputs, and requested vs effective provider', (t) => {
      if (skip || !session) return t.skip(skip);
      const info = session.info;
      assert.ok(info.inputs.length > 0 && info.outputs.length > 0);
      for (const v of [...info.inputs, ...info.outputs]) {
        assert.ok(v.name.length > 0, 'tensor has a name');
        assert.ok(v.dims.length > 0, `${v.name} has a rank`);
      }
      assert.ok(info.requestedProviders.length > 0);
      assert.equal(info.provider, s.provider);
      assert.ok(Array.isArray(info.fallbacks));
    });

    test('run returns every described output, sized by its dims, finite, deterministic', async (t) => {
      if (skip || !session) return t.skip(skip);
      const fill = (k: number): number => ((k * 2654435761) % 1000) / 1000;
      const a = await session.run(feedsFor(session.info.inputs, fill));
      const b = await session.run(feedsFor(session.info.inputs, fill));
      assert.ok(a.inferMs >= 0);
      for (const o of session.info.outputs) {
        const t1 = a.outputs[o.name], t2 = b.outputs[o.name];
        assert.ok(t1, `output ${o.name} present`);
        assert.equal(t1.data.length, t1.dims.reduce((x, y) => x * y, 1));
        const d1 = t1.data as Float32Array, d2 = t2.data as Float32Array;
        assert.ok(d1.every((v) => Number.isFinite(v)), `${o.name} is finite`);
        assert.deepEqual(Array.from(d1.slice(0, 64)), Array.from(d2.slice(0, 64)));
      }
    });

    test('concurrent runs all resolve', async (t) => {
      if (skip || !session) return t.skip(skip);
      const runs = await Promise.all([0, 1, 2].map((k) => session!.run(feedsFor(session!.info.inputs, () => k / 3))));
      assert.equal(runs.length, 3);
    });

    test('a wrong input name is rejected with an EdgeFleetError', async (t) => {
      if (skip || !session) return t.skip(skip);
      const feeds = feedsFor(session.info.inputs, () => 0);
      const renamed = Object.fromEntries(Object.values(feeds).map((v, k) => [`not-an-input-${k}`, v]));
      await assert.rejects(session.run(renamed), (e: unknown) => e instanceof EdgeFleetError);
    });

    test('a feed reused after a run (its buffer went to the worker) or of the wrong size is refused with an InputError', async (t) => {
      if (skip || !session) return t.skip(skip);
      const feeds = feedsFor(session.info.inputs, () => 0.5);
      await session.run(feeds);
      await assert.rejects(session.run(feeds), (e: unknown) => e instanceof EdgeFleetError && e.code === 'E_INPUT' && /detached.*fresh copy/.test(e.message));
      const short = Object.fromEntries(Object.entries(feedsFor(session.info.inputs, () => 0)).map(([k, v]) => [k, { ...v, data: v.data.subarray(1) }]));
      await assert.rejects(session.run(short), (e: unknown) => e instanceof EdgeFleetError && e.code === 'E_INPUT' && /Expected \d+ values for input/.test(e.message));
      // The session still runs after refusing them.
      const ok = await session.run(feedsFor(session.info.inputs, () => 0.5));
      assert.ok(Object.keys(ok.outputs).length > 0);
    });

    test('a missing model file is rejected with an EdgeFleetError', async (t) => {
      if (skip) return t.skip(skip);
      await assert.rejects(adapter.createSession({ modelPath: '/nonexistent/model.bin' }), (e: unknown) => e instanceof EdgeFleetError);
    });

    test('dispose is safe twice and a later run is rejected', async (t) => {
      if (skip) return t.skip(skip);
      const s2 = await adapter.createSession({ modelPath: s.modelPath, warmUp: false });
      await s2.dispose();
      await s2.dispose();
      await assert.rejects(s2.run(feedsFor(s2.info.inputs, () => 0)), (e: unknown) => e instanceof EdgeFleetError && e.code === 'E_CLOSED');
    });
  });
}

describe('onnxruntime: no silent fallback', () => {
  test('falls back only to listed providers and reports requested vs effective with reasons', async (t) => {
    if (!existsSync(BLAZEFACE)) return t.skip(`${BLAZEFACE} is missing (run ./scripts/setup.sh)`);
    const probe = new OrtAdapter();
    // Where a GPU EP loads (a lent GPU machine), the fallback path below cannot be shown; say so.
    const gpu = await probe.createSession({ modelPath: BLAZEFACE, providers: ['cuda'], warmUp: false }).then(async (s) => { await s.dispose(); return true; }, () => false);
    if (gpu) return t.skip('the CUDA EP loads on this machine, so there is nothing to fall back from');
    const s = await probe.createSession({ modelPath: BLAZEFACE, providers: ['tensorrt', 'cuda', 'cpu'], warmUp: false });
    try {
      assert.deepEqual(s.info.requestedProviders, ['tensorrt', 'cuda', 'cpu']);
      assert.equal(s.info.provider, 'cpu');
      assert.deepEqual(s.info.fallbacks.map((f) => f.provider), ['tensorrt', 'cuda']);
      for (const f of s.info.fallbacks) assert.ok(f.reason.length > 0, `${f.provider} fallback has a reason`);
    } finally {
      await s.dispose();
    }
    await assert.rejects(probe.createSession({ modelPath: BLAZEFACE, providers: ['cuda'] }), (e: unknown) => e instanceof EdgeFleetError && /cuda:/.test(e.message));
  });
});

describe('adapters that cannot run here say why', () => {
  test('Core ML probes unavailable off Apple with the reason', async () => {
    const p = await new CoreMlAdapter('linux').probe();
    assert.equal(p.available, false);
    assert.match(p.reason!, /Apple/);
  });

  test('the real TensorRT adapter names what is missing', async () => {
    const p = await new TensorRtAdapter({ findTrtexec: () => undefined, ortTensorRt: async () => ({ ok: false, reason: 'no TensorRT EP in this onnxruntime-node' }) }).probe();
    assert.equal(p.available, false);
    assert.match(p.reason!, /trtexec/);
    assert.match(p.reason!, /TensorRT EP/);
  });

  test('the registry knows every adapter and refuses unknown names', () => {
    assert.deepEqual(adapterNames().sort(), ['coreml', 'onnxruntime', 'tensorrt', 'tflite']);
    assert.equal(createAdapter('tflite').name, 'tflite');
    assert.throws(() => createAdapter('openvino'), /Expected an adapter name/);
  });
});
