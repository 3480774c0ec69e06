/**
 * TensorRT adapter for Jetson. onnxruntime-node from npm has no TensorRT EP on arm64, and its binding
 * forwards only `deviceId` to TensorRT (DESIGN.md), so FP16/INT8 cannot be asked for from Node.
 * Instead the engine is built on the device by JetPack's `trtexec` (FP16, or INT8 from the QDQ
 * model's scales), cached per model sha256 + TensorRT version + precision, and loaded through an
 * ONNX Runtime build with the TensorRT EP as an EPContext wrapper model. Every side effect (spawn,
 * file system, where trtexec is, how ORT is opened) is injected so the logic is testable off Jetson.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import { join } from 'node:path';
import { homedir } from 'node:os';
import type { Readable } from 'node:stream';
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult } from '../contract.js';
import { ModelError } from '../../agent/src/util/errors.js';
import { decodeModel, encodeModel, readMetadataProps } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph } from '../../fleet-server/src/convert/onnx/model.js';
import { OrtAdapter } from '../onnxruntime/adapter.js';
import { buildTrtexecArgs, findTrtexec, formatVersion, parseTrtexecVersion, type TrtVersion } from './trtexec.js';
import { EngineCache, nodeCacheFs, sha256, type CacheFs, type EngineEntry } from './engine-cache.js';
import { encodeEpContextModel } from './epcontext.js';
import { publishEngineBuild } from './progress.js';

/** The part of child_process.spawn this adapter uses. */
export type SpawnFn = (cmd: string, args: string[]) => {
  stdout: Readable | null;
  stderr: Readable | null;
  on(ev: 'close', cb: (code: number | null) => void): unknown;
  on(ev: 'error', cb: (err: Error) => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
};

export interface TensorRtDeps {
  spawn?: SpawnFn;
  fs?: CacheFs;
  cacheDir?: string;
  findTrtexec?: () => string | undefined;
  /** Whether the ONNX Runtime in use has the TensorRT EP; a reason when not. */
  ortTensorRt?: () => Promise<{ ok: boolean; reason?: string }>;
  /** Opens the EPContext wrapper (default: ORT with providers ["tensorrt"]). */
  openWrapper?: (opts: CreateSessionOptions, entry: EngineEntry) => Promise<AdapterSession>;
  computeCapability?: string;
  /** Build timeout; trtexec takes minutes for a large model on a Nano. */
  buildTimeoutMs?: number;
}

export class TrtError extends ModelError {}

/**
 * The trtexec engine build's time limit unless `buildTimeoutMs` says otherwise: a large model takes
 * minutes on a Nano. The agent's OTA load limit (detector.loadTimeoutMs) defaults above it.
 */
export const TRTEXEC_BUILD_TIMEOUT_MS = 30 * 60_000;

const INSTALL_ORT_TRT = 'install an ONNX Runtime built with --use_tensorrt for your JetPack (see docs/jetson.md)';

/** A one-node model (Relu on [1]): enough to see whether an execution provider loads. */
function tinyModel(): Uint8Array {
  const g = emptyGraph('ep-check');
  g.inputs.push({ name: 'x', elemType: 1, shape: [1] });
  g.outputs.push({ name: 'y', elemType: 1, shape: [1] });
  g.nodes.push({ opType: 'Relu', name: 'relu', inputs: ['x'], outputs: ['y'], attributes: [] });
  return encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g });
}

async function checkOrtTensorRt(): Promise<{ ok: boolean; reason?: string }> {
  const ort = await import('onnxruntime-node');
  const list = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string; bundled?: boolean }> }).listSupportedBackends?.() ?? [];
  const trt = list.find((b) => b.name === 'tensorrt');
  if (!trt) {
    return { ok: false, reason: `this onnxruntime-node build (${process.arch}) has no TensorRT execution provider (it lists ${list.map((b) => b.name).join(', ') || 'none'}); ${INSTALL_ORT_TRT}` };
  }
  if (trt.bundled !== false) return { ok: true };
  // bundled: false — npm's x86-64 build lists the EP but does not ship its shared library
  // (libonnxruntime_providers_tensorrt.so). Open a one-node session with it now rather than find out
  // after a trtexec engine build of minutes.
  try {
    const session = await ort.InferenceSession.create(tinyModel(), { executionProviders: ['tensorrt'], logSeverityLevel: 3 });
    await session.release();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `this onnxruntime-node build (${process.arch}) lists the TensorRT execution provider as not bundled and it does not load (${(err as Error).message.split('\n')[0].slice(0, 300)}); ${INSTALL_ORT_TRT}` };
  }
}

let ortTensorRtCheck: Promise<{ ok: boolean; reason?: string }> | undefined;

/** Whether this process's ONNX Runtime can run the TensorRT EP (checked once: the library does not change). */
function defaultOrtTensorRt(): Promise<{ ok: boolean; reason?: string }> {
  ortTensorRtCheck ??= checkOrtTensorRt();
  return ortTensorRtCheck;
}

export interface RunCommandOptions {
  timeoutMs: number;
  /** After the timeout: how long SIGTERM has before SIGKILL. */
  killGraceMs?: number;
  /** Stops the child as the timeout does (a load given up: CreateSessionOptions.signal). */
  signal?: AbortSignal;
}

/**
 * Runs a command to its end. On timeout the child is stopped (SIGTERM, then SIGKILL after
 * killGraceMs) and the promise rejects once it has exited: a trtexec left running would go on
 * building on the GPU while the agent falls back to another provider.
 */
export function runCommand(spawn: SpawnFn, cmd: string, args: string[], opts: RunCommandOptions): Promise<{ code: number | null; output: string }> {
  const { timeoutMs, killGraceMs = 5000 } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args);
    let output = '';
    // Bounded: keep the last 64 KiB of trtexec's (long) log for error messages.
    const keep = (b: Buffer): void => { output = (output + b.toString()).slice(-65536); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let timedOut: TrtError | undefined;
    const timers: NodeJS.Timeout[] = [];
    const onAbort = (): void => stop(new TrtError(`${cmd} was stopped: the load was given up${opts.signal?.reason instanceof Error ? ` (${opts.signal.reason.message})` : ''}`));
    const clear = (): void => {
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const stop = (why: TrtError): void => {
      if (timedOut) return;
      timedOut = why;
      child.kill('SIGTERM');
      timers.push(setTimeout(() => {
        child.kill('SIGKILL');
        // A child whose pipes stay open (a grandchild holding them) never closes: do not wait forever.
        timers.push(setTimeout(() => reject(timedOut), 2000));
      }, killGraceMs));
    };
    timers.push(setTimeout(() => stop(new TrtError(`${cmd} did not finish within ${timeoutMs} ms and was stopped`)), timeoutMs));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => { clear(); reject(err); });
    child.on('close', (code) => {
      clear();
      if (timedOut) reject(timedOut);
      else resolve({ code, output });
    });
  });
}

export class TensorRtAdapter implements PlatformAdapter {
  readonly name: string = 'tensorrt';
  private readonly spawn: SpawnFn;
  private readonly cache: EngineCache;
  private version: TrtVersion | undefined;

  constructor(private readonly deps: TensorRtDeps = {}) {
    this.spawn = deps.spawn ?? (nodeSpawn as unknown as SpawnFn);
    this.cache = new EngineCache(deps.cacheDir ?? join(homedir(), '.cache', 'edge-fleet', 'trt-engines'), deps.fs ?? nodeCacheFs);
  }

  private trtexec(): string | undefined {
    return (this.deps.findTrtexec ?? findTrtexec)();
  }

  /** TensorRT version from trtexec's banner (cached for the adapter's life). */
  async trtVersion(): Promise<TrtVersion> {
    if (this.version) return this.version;
    const exe = this.trtexec();
    if (!exe) throw new TrtError('trtexec was not found (looked in /usr/src/tensorrt/bin, /usr/bin, /usr/local/bin, $TRTEXEC and PATH); install JetPack\'s TensorRT (apt install tensorrt) — see docs/jetson.md');
    const { output } = await runCommand(this.spawn, exe, ['--help'], { timeoutMs: 30_000 });
    const v = parseTrtexecVersion(output);
    if (!v) throw new TrtError(`Could not read the TensorRT version from "${exe} --help" (expected a "[TensorRT v8602]" banner); output began: ${output.slice(0, 200)}`);
    this.version = v;
    return v;
  }

  async probe(): Promise<ProbeResult> {
    const missing: string[] = [];
    if (!this.trtexec()) missing.push('trtexec (JetPack TensorRT: apt install tensorrt, or set TRTEXEC)');
    const ort = await (this.deps.ortTensorRt ?? defaultOrtTensorRt)();
    if (!ort.ok) missing.push(ort.reason ?? 'an ONNX Runtime with the TensorRT EP');
    return missing.length ? { available: false, reason: `TensorRT adapter needs: ${missing.join('; ')}` } : { available: true };
  }

  capabilities(): AdapterCapabilities {
    return { providers: ['tensorrt'], precisions: ['fp32', 'fp16', 'int8'], formats: ['onnx'] };
  }

  /** Builds (or finds in the cache) the engine for a model; returns the cache entry. */
  async ensureEngine(modelPath: string, precision: 'fp32' | 'fp16' | 'int8', signal?: AbortSignal): Promise<{ entry: EngineEntry; built: boolean }> {
    const fs = this.deps.fs ?? nodeCacheFs;
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(modelPath);
    } catch (err) {
      throw new TrtError(`Model file ${modelPath} cannot be read (${(err as Error).message}); give the path of an .onnx file`, { cause: err });
    }
    // fleetctl model quantize records its target in the file. A CPU build has uint8 activations with
    // zero points and binary16 scales read through Casts: TensorRT's explicit quantization takes
    // neither (int8 with zero point 0, scales as initializers). Say so before trtexec's parser does.
    let props: Record<string, string> = {};
    try {
      props = readMetadataProps(bytes);
    } catch {
      // Not a protobuf this reader follows: trtexec's parser says what is wrong with it.
    }
    if (props['edgefleet.precision'] === 'int8' && props['edgefleet.target'] === 'cpu') {
      throw new TrtError(`${modelPath} is an INT8 build for onnxruntime's CPU kernels (fleetctl model quantize --target cpu), which TensorRT cannot run; build one with --target tensorrt, or give TensorRT boxes the FP32 or FP16 model`);
    }
    const version = await this.trtVersion();
    const key = { modelSha256: sha256(bytes), version, precision };
    const hit = await this.cache.lookup(key);
    if (hit) return { entry: hit, built: false };
    const entry = this.cache.entry(key);
    await fs.mkdir(entry.dir, { recursive: true });
    const args = buildTrtexecArgs({ onnxPath: modelPath, enginePath: entry.enginePath, precision, version, timingCachePath: join(entry.dir, '..', `timing-trt${formatVersion(version)}.cache`) });
    const timeoutMs = this.deps.buildTimeoutMs ?? TRTEXEC_BUILD_TIMEOUT_MS;
    // Minutes on a Jetson: say so to whoever waits (the agent's systemd start asks for more time).
    const t0 = Date.now();
    let ok = false;
    publishEngineBuild({ kind: 'start', modelPath, precision, timeoutMs });
    try {
      const { code, output } = await runCommand(this.spawn, this.trtexec()!, args, { timeoutMs, signal });
      if (code !== 0) throw new TrtError(`trtexec failed (exit ${code}) building ${precision} engine for ${modelPath}: ${output.slice(-1500)}`);
      ok = true;
    } finally {
      publishEngineBuild({ kind: 'end', modelPath, precision, durationMs: Date.now() - t0, ok });
    }
    const model = decodeModel(Uint8Array.from(bytes));
    await fs.writeFile(entry.wrapperPath, encodeEpContextModel({
      inputs: model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name)),
      outputs: model.graph.outputs, enginePath: entry.enginePath, version, computeCapability: this.deps.computeCapability,
    }));
    return { entry: await this.cache.commit(key, { source: modelPath }), built: true };
  }

  async createSession(opts: CreateSessionOptions): Promise<AdapterSession> {
    const requested = opts.providers?.length ? opts.providers : ['tensorrt'];
    if (!requested.includes('tensorrt')) throw new TrtError(`The TensorRT adapter runs only the "tensorrt" provider but received ${requested.join(', ')}`);
    const probe = await this.probe();
    if (!probe.available) throw new TrtError(probe.reason!);
    const { entry } = await this.ensureEngine(opts.modelPath, opts.precision ?? 'fp16', opts.signal);
    const open = this.deps.openWrapper ?? ((o: CreateSessionOptions, e: EngineEntry) => new OrtAdapter().createSession({ ...o, modelPath: e.wrapperPath, providers: ['tensorrt'] }));
    return open(opts, entry);
  }
}
