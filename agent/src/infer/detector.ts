/**
 * A detector = model metadata + preprocessing + an adapter session (worker thread) + a decoder.
 * `detect()` takes a frame in source pixels and returns detections in source pixels.
 */
import { performance } from 'node:perf_hooks';
import type { Detection, RgbImage } from '../types.js';
import { loadModelMetadata, type ModelMetadata } from '../model/metadata.js';
import { fullRangeInt8Warning } from '../model/int8-cpu.js';
import { planTransform, resizeRgb, specForTransform, toTensor } from '../preprocess/preprocess.js';
import type { ResizeTransform } from '../preprocess/transform.js';
import { createDecoder } from '../decode/index.js';
import type { Decoder, OutputMap } from '../decode/types.js';
import type { AdapterSession, PlatformAdapter } from '../../../platform-adapters/contract.js';
import { OrtAdapter, type OrtWorkerSession } from '../../../platform-adapters/onnxruntime/adapter.js';
import { TfliteAdapter } from '../../../platform-adapters/tflite/adapter.js';
import { TensorRtAdapter } from '../../../platform-adapters/tensorrt/adapter.js';
import { ConfigError, describeError, ModelError } from '../util/errors.js';
import { DEFAULT_RUN_TIMEOUT_MS } from '../config/schema.js';
import { moduleLogger } from '../util/log.js';

const log = moduleLogger('detector');

export interface DetectorOptions {
  modelPath: string;
  providers?: string[];
  intraOpThreads?: number;
  adapter?: PlatformAdapter;
  /** Overrides of the decoder's thresholds from the metadata (e.g. a lower face threshold). */
  scoreThreshold?: number;
  /** The TensorRT engine adapter tried first when providers begin with "tensorrt" (tests inject a stand-in). */
  tensorRt?: PlatformAdapter;
  /**
   * A run not answered within this time rejects with E_INFER_TIMEOUT and closes the session (its
   * worker stopped); default detector.runTimeoutMs's. The load and its warm-up run are not timed.
   */
  runTimeoutMs?: number;
  /**
   * Gives the load up (its caller's time limit: OTA loads, detector.loadTimeoutMs): open() rejects
   * with E_LOAD_ABORTED and what the load started (worker thread, engine build) is stopped.
   */
  signal?: AbortSignal;
}

function runTimeoutMs(opts: DetectorOptions): number {
  return opts.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
}

/**
 * providers ["tensorrt", ...] on an ONNX model: the TensorRT adapter (JetPack trtexec engine, cached,
 * run through ORT's EPContext; docs/jetson.md) when this box has what it needs; undefined otherwise,
 * and the ONNX Runtime adapter goes down the list as usual (its TensorRT EP, then CUDA, then CPU).
 */
async function openTensorRt(opts: DetectorOptions, trt: PlatformAdapter): Promise<AdapterSession | undefined> {
  const probe = await trt.probe();
  if (!probe.available) {
    log.info({ model: opts.modelPath, reason: probe.reason }, 'TensorRT engine adapter unavailable; trying the next providers');
    return undefined;
  }
  try {
    return await trt.createSession({ modelPath: opts.modelPath, providers: ['tensorrt'], intraOpThreads: opts.intraOpThreads, warmUp: true, precision: 'fp16', runTimeoutMs: runTimeoutMs(opts), signal: opts.signal });
  } catch (err) {
    // Given up (the build stopped by the caller's limit): no next provider is tried.
    if (opts.signal?.aborted) throw err;
    log.warn({ model: opts.modelPath, err: describeError(err) }, 'TensorRT engine failed; trying the next providers');
    return undefined;
  }
}

/**
 * The adapter a model file needs when none is given: `.tflite` runs through LiteRT.js on the CPU
 * (the TFLite artifacts `fleetctl model export` makes for Android work on Linux boxes too), anything
 * else through onnxruntime with the configured providers.
 */
export function adapterFor(modelPath: string, providers?: string[]): { adapter: PlatformAdapter; providers?: string[] } {
  if (/\.mlmodelc?$/i.test(modelPath)) {
    throw new ConfigError(`${modelPath} is a Core ML model, which runs on iOS through the app's bridge (docs/ios-bridge.md), not in edge-agent; give the agent the ONNX or TFLite model`);
  }
  if (/\.tflite$/i.test(modelPath)) {
    if (providers?.length && !providers.includes('cpu')) {
      throw new ConfigError(`${modelPath} is a TFLite model, which runs on the CPU through LiteRT.js, but detector.providers is ${JSON.stringify(providers)}; add "cpu" or use the ONNX model`);
    }
    return { adapter: new TfliteAdapter(), providers: ['wasm'] };
  }
  return { adapter: new OrtAdapter(), providers };
}

export interface DetectTimings {
  preprocessMs: number;
  inferMs: number;
  decodeMs: number;
}

export interface DetectResult {
  detections: Detection[];
  timings: DetectTimings;
}

export class Detector {
  private prefetched: { image: RgbImage; prepared: Promise<{ rgb: Uint8Array; transform: ResizeTransform; ms: number }> } | undefined;

  private constructor(
    readonly meta: ModelMetadata,
    readonly session: AdapterSession,
    private readonly decoder: Decoder,
    private readonly inputName: string,
  ) {}

  static async open(opts: DetectorOptions): Promise<Detector> {
    const meta = await loadModelMetadata(opts.modelPath);
    if (opts.scoreThreshold !== undefined && 'scoreThreshold' in meta.decoder) meta.decoder.scoreThreshold = opts.scoreThreshold;
    const decoder = createDecoder(meta.decoder);
    const { adapter, providers } = opts.adapter ? { adapter: opts.adapter, providers: opts.providers } : adapterFor(opts.modelPath, opts.providers);
    const session = (!opts.adapter && providers?.[0] === 'tensorrt' && /\.onnx$/i.test(opts.modelPath)
      ? await openTensorRt(opts, opts.tensorRt ?? new TensorRtAdapter())
      : undefined) ?? await adapter.createSession({ modelPath: opts.modelPath, providers, intraOpThreads: opts.intraOpThreads, warmUp: true, runTimeoutMs: runTimeoutMs(opts), signal: opts.signal });
    const inputName = meta.input ?? session.info.inputs[0]?.name;
    if (!inputName || !session.info.inputs.some((i) => i.name === inputName)) {
      await session.dispose();
      throw new ModelError(`Model metadata names input "${meta.input}" but ${opts.modelPath} has inputs ${session.info.inputs.map((i) => i.name).join(', ')}`);
    }
    const int8Warning = await fullRangeInt8Warning(opts.modelPath, session.info.provider);
    if (int8Warning) log.warn({ model: opts.modelPath }, int8Warning);
    return new Detector(meta, session, decoder, inputName);
  }

  get provider(): string {
    return this.session.info.provider;
  }

  async detect(image: RgbImage): Promise<Detection[]> {
    return (await this.detectTimed(image)).detections;
  }

  /**
   * Starts the resize of a frame that is likely to be detected next, so that it runs on sharp's
   * threads while the current frame is still in inference. `detectTimed` of the same frame object
   * picks it up; a prefetch that is not used is simply replaced by the next one.
   */
  prefetch(image: RgbImage): void {
    this.prefetched = { image, prepared: this.prepare(image) };
    // A failed prefetch is reported by the detectTimed that awaits it; never as an unhandled rejection.
    this.prefetched.prepared.catch(() => undefined);
  }

  private async prepare(image: RgbImage): Promise<{ rgb: Uint8Array; transform: ResizeTransform; ms: number }> {
    const spec = this.meta.preprocess;
    const t0 = performance.now();
    const transform = planTransform(spec, image.width, image.height);
    // The resize runs on sharp's threads; the per-pixel layout/normalisation in the inference worker
    // when the session can do it, so neither blocks the event loop.
    const rgb = await resizeRgb(image, transform, spec.padValue);
    return { rgb, transform, ms: performance.now() - t0 };
  }

  async detectTimed(image: RgbImage): Promise<DetectResult> {
    const spec = this.meta.preprocess;
    const t0 = performance.now();
    const pre = this.prefetched?.image === image ? this.prefetched.prepared : this.prepare(image);
    this.prefetched = undefined;
    const { rgb, transform, ms } = await pre;
    // Time spent waiting here (the part of the resize not hidden behind the previous inference).
    const t1 = t0 + Math.min(ms, performance.now() - t0);
    const session = this.session as AdapterSession & { runRgb?: OrtWorkerSession['runRgb'] };
    if (session.runRgb) {
      // Layout, normalisation and decoding all happen in the worker; only detections come back.
      const r = await session.runRgb(this.inputName, rgb, specForTransform(spec, transform), { spec: this.meta.decoder, labels: this.meta.labels, transform });
      return { detections: r.detections ?? [], timings: { preprocessMs: t1 - t0, inferMs: r.inferMs, decodeMs: r.decodeMs ?? 0 } };
    }
    const t = toTensor(rgb, specForTransform(spec, transform));
    const { outputs, inferMs } = await session.run({ [this.inputName]: { type: spec.dtype, dims: t.dims, data: t.data } });
    const t2 = performance.now();
    const map: OutputMap = {};
    for (const [name, out] of Object.entries(outputs)) {
      map[name] = { dims: out.dims, data: out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>) };
    }
    const detections = this.decoder(map, { transform, labels: this.meta.labels, outputNames: this.session.info.outputs.map((o) => o.name) });
    const t3 = performance.now();
    return { detections, timings: { preprocessMs: t1 - t0, inferMs, decodeMs: t3 - t2 } };
  }

  async close(): Promise<void> {
    await this.session.dispose();
  }
}
