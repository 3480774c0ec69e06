/**
 * Light stand-in detector models for OTA tests, written with the project's ONNX codec: a few ops
 * that read the input (so the runtime cannot fold it away) and emit CenterNet-style `[1, 4, 6]`
 * detections (x1, y1, x2, y2, score, class in 16×16 input pixels), with a metadata file.
 * Variants: `good`, `empty` (runs, finds nothing), `slow` (a chain of 768×768 MatMuls),
 * `bad-shape` (`[1, 4, 5]`: the decoder refuses it, so the self-test fails), `nan` (runs, every
 * score NaN: a broken run, as an FP16 overflow gives), `nan-dark` (as `good` on a bright picture,
 * every score NaN on a dark one, mean input below 0.4: a model that overflows on some inputs only).
 *
 * `InProcessOrtAdapter` runs such tiny models on the main thread (microseconds per run), so 20
 * agents fit in one test process without 20 inference workers; the real Detector, preprocessing
 * and decoder still run around it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { DataType, emptyGraph, floatTensor, int64Tensor, type OnnxModel } from '../../fleet-server/src/convert/onnx/model.js';
import type { AdapterSession, CreateSessionOptions, PlatformAdapter, RunResult, TensorData, TensorInfo } from '../../platform-adapters/contract.js';
import type { RgbImage } from '../../agent/src/types.js';

export type StandInKind = 'good' | 'empty' | 'slow' | 'bad-shape' | 'nan' | 'nan-dark';

export function standInModel(kind: StandInKind, opts: { slowLayers?: number; score?: number } = {}): Uint8Array {
  const g = emptyGraph(`standin-${kind}`);
  g.inputs.push({ name: 'images', elemType: DataType.FLOAT, shape: [1, 16, 16, 3] });
  const rows = kind === 'bad-shape' ? 5 : 6;
  g.outputs.push({ name: 'detections', elemType: DataType.FLOAT, shape: [1, 4, rows] });
  const score = kind === 'empty' ? 0 : kind === 'nan' ? Number.NaN : opts.score ?? 0.9;
  const det = [
    [1, 1, 7, 7, score, 0], [8, 8, 15, 15, score * 0.9, 0], [1, 8, 6, 15, score * 0.8, 0], [9, 1, 15, 6, score * 0.7, 0],
  ].map((r) => r.slice(0, rows)).flat();
  g.initializers.set('det', floatTensor([1, 4, rows], det));
  g.initializers.set('zero', floatTensor([1], [0]));
  let src = 'images';
  if (kind === 'slow') {
    g.initializers.set('shape', int64Tensor([2], [1, 768]));
    g.nodes.push({ opType: 'Reshape', name: 'flat', inputs: ['images', 'shape'], outputs: ['flat'], attributes: [] });
    const w = new Float32Array(768 * 768).map((_v, i) => ((i * 7919) % 13) / 13e3);
    g.initializers.set('w', floatTensor([768, 768], w));
    src = 'flat';
    for (let i = 0; i < (opts.slowLayers ?? 96); i++) {
      g.nodes.push({ opType: 'MatMul', name: `mm${i}`, inputs: [src, 'w'], outputs: [`mm${i}`], attributes: [] });
      src = `mm${i}`;
    }
  }
  g.nodes.push({ opType: 'ReduceMean', name: 'mean', inputs: [src], outputs: ['mean'], attributes: [{ name: 'keepdims', type: 'int', value: 0 }] });
  let gated = 'mean';
  if (kind === 'nan-dark') {
    // sqrt(mean - 0.4) × 0: 0 for a bright picture, NaN for a dark one.
    g.initializers.set('dark', floatTensor([1], [0.4]));
    g.nodes.push({ opType: 'Sub', name: 'less', inputs: ['mean', 'dark'], outputs: ['less'], attributes: [] });
    g.nodes.push({ opType: 'Sqrt', name: 'root', inputs: ['less'], outputs: ['root'], attributes: [] });
    gated = 'root';
  }
  g.nodes.push({ opType: 'Mul', name: 'gate', inputs: [gated, 'zero'], outputs: ['z'], attributes: [] });
  g.nodes.push({ opType: 'Add', name: 'out', inputs: ['det', 'z'], outputs: ['detections'], attributes: [] });
  const model: OnnxModel = { irVersion: 8, opsetImports: [{ domain: '', version: 13 }], producerName: 'ef-test', metadataProps: {}, graph: g };
  return encodeModel(model);
}

export function standInMeta(name: string, version: string) {
  return {
    name, version, task: 'detect', input: 'images',
    preprocess: { width: 16, height: 16, layout: 'NHWC', channelOrder: 'RGB', resize: 'stretch', align: 'center', padValue: 0, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], dtype: 'float32' },
    decoder: { type: 'centernet', output: 'detections', scoreThreshold: 0.3, iouThreshold: 0.45, maxDetections: 10 },
    labels: ['person'],
  };
}

/** Writes DIR/model.onnx + DIR/model.meta.json; returns DIR. */
export function writeStandIn(dir: string, opts: { name: string; version: string; kind?: StandInKind; slowLayers?: number; score?: number }): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), standInModel(opts.kind ?? 'good', opts));
  writeFileSync(join(dir, 'model.meta.json'), JSON.stringify(standInMeta(opts.name, opts.version), null, 2));
  return dir;
}

export function grayImage(width = 32, height = 32, value = 128): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(value) } as RgbImage;
}

function info(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => m.isTensor
    ? { name: m.name, type: m.type as TensorInfo['type'], dims: m.shape.map((d) => (typeof d === 'number' ? d : -1)) }
    : { name: m.name, type: 'unknown', dims: [] });
}

/** onnxruntime-node on the calling thread; only for tiny test models. */
export class InProcessOrtAdapter implements PlatformAdapter {
  readonly name = 'onnxruntime-inprocess';
  async probe() { return { available: true }; }
  capabilities() { return { providers: ['cpu'], precisions: ['fp32' as const], formats: ['onnx'] }; }
  async createSession(opts: CreateSessionOptions): Promise<AdapterSession> {
    const s = await ort.InferenceSession.create(opts.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    const inputs = info(s.inputMetadata);
    const outputs = info(s.outputMetadata);
    return {
      info: { inputs, outputs, requestedProviders: ['cpu'], provider: 'cpu', fallbacks: [] },
      async run(feeds: Record<string, TensorData>): Promise<RunResult> {
        const f: Record<string, ort.Tensor> = {};
        for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
        const t0 = performance.now();
        const out = await s.run(f);
        const inferMs = performance.now() - t0;
        const outputs: Record<string, TensorData> = {};
        for (const [k, t] of Object.entries(out)) outputs[k] = { type: t.type as TensorData['type'], dims: [...t.dims], data: t.data as Float32Array };
        return { outputs, inferMs };
      },
      async dispose() { await s.release(); },
    };
  }
}
