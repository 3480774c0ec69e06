/**
 * Which runtime a detector gets. A board preset's providers apply when the config names none (a
 * jetson-orin box ran on the CPU: the schema default always won), and providers beginning with
 * "tensorrt" go to the TensorRT engine adapter when the box has trtexec and the TensorRT EP (the agent
 * never used it), else down the list through ONNX Runtime.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadAgentConfig } from '../../agent/src/config/load.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import type { CreateSessionOptions, PlatformAdapter } from '../../platform-adapters/contract.js';

const MODEL = resolve('assets/models/blazeface-back/model.onnx');
const dir = mkdtempSync(join(tmpdir(), 'ef-providers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function load(extra: Record<string, unknown>, detector: Record<string, unknown> = {}) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ detector: { model: 'm.onnx', ...detector }, cameras: [{ source: { kind: 'test' } }], ...extra }));
  return loadAgentConfig(file);
}

test('the board preset\'s providers apply when the config names none; the config\'s own list wins', async () => {
  assert.deepEqual((await load({ board: 'jetson-orin' })).detector.providers, ['tensorrt', 'cuda', 'cpu']);
  assert.deepEqual((await load({ board: 'jetson-orin' }, { providers: ['cpu'] })).detector.providers, ['cpu']);
  assert.deepEqual((await load({})).detector.providers, ['cpu']);
});

test('providers ["tensorrt", ...] open the TensorRT engine adapter when it is available, else go down the list', { skip: existsSync(MODEL) ? false : 'assets missing: run scripts/setup.sh' }, async () => {
  const asked: CreateSessionOptions[] = [];
  const trt = (available: boolean): PlatformAdapter => ({
    name: 'tensorrt',
    probe: async () => (available ? { available: true } : { available: false, reason: 'TensorRT adapter needs: trtexec' }),
    capabilities: () => ({ providers: ['tensorrt'], precisions: ['fp16'], formats: ['onnx'] }),
    // Stands in for the engine session (EPContext through ORT's TensorRT EP): ORT on the CPU here.
    createSession: async (o) => { asked.push(o); return new OrtAdapter().createSession({ ...o, providers: ['cpu'] }); },
  });
  const viaEngine = await Detector.open({ modelPath: MODEL, providers: ['tensorrt', 'cuda', 'cpu'], intraOpThreads: 1, tensorRt: trt(true) });
  await viaEngine.close();
  assert.deepEqual(asked.map((o) => [o.modelPath, o.providers, o.precision]), [[MODEL, ['tensorrt'], 'fp16']]);
  const down = await Detector.open({ modelPath: MODEL, providers: ['tensorrt', 'cuda', 'cpu'], intraOpThreads: 1, tensorRt: trt(false) });
  assert.equal(down.provider, 'cpu');
  assert.deepEqual(down.session.info.fallbacks.map((f) => f.provider), ['tensorrt', 'cuda'], 'ONNX Runtime says why it passed each over');
  await down.close();
  assert.equal(asked.length, 1, 'an unavailable engine adapter is not asked for a session');
});
