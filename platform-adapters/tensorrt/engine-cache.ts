/**
 * Engine cache: one folder per (model sha256, TensorRT version, precision). A TensorRT engine is
 * only valid for the TensorRT version (and GPU) that built it (TensorRT developer guide, "Serialized
 * engines are not portable across platforms or TensorRT versions"), so the version is part of the key.
 * Each entry holds the serialized engine, the EPContext wrapper model that ORT loads, and a manifest.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as fsp from 'node:fs/promises';
import { formatVersion, type TrtVersion } from './trtexec.js';

export interface EngineKey {
  modelSha256: string;
  version: TrtVersion;
  precision: 'fp32' | 'fp16' | 'int8';
}

export interface EngineEntry {
  dir: string;
  enginePath: string;
  wrapperPath: string;
  manifestPath: string;
}

export interface CacheFs {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
  stat(path: string): Promise<{ size: number }>;
  rename(from: string, to: string): Promise<void>;
}

export const nodeCacheFs: CacheFs = {
  readFile: (p) => fsp.readFile(p),
  writeFile: (p, d) => fsp.writeFile(p, d),
  mkdir: (p, o) => fsp.mkdir(p, o),
  stat: (p) => fsp.stat(p),
  rename: (a, b) => fsp.rename(a, b),
};

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function entryName(key: EngineKey): string {
  return `${key.modelSha256.slice(0, 16)}-trt${formatVersion(key.version)}-${key.precision}`;
}

export class EngineCache {
  constructor(private readonly root: string, private readonly fs: CacheFs = nodeCacheFs) {}

  entry(key: EngineKey): EngineEntry {
    const dir = join(this.root, entryName(key));
    return { dir, enginePath: join(dir, 'model.engine'), wrapperPath: join(dir, 'model_ctx.onnx'), manifestPath: join(dir, 'manifest.json') };
  }

  /** The entry when its manifest matches the key and its engine and wrapper exist with the recorded size. */
  async lookup(key: EngineKey): Promise<EngineEntry | undefined> {
    const e = this.entry(key);
    let manifest: { modelSha256?: string; trtVersion?: string; precision?: string; engineBytes?: number };
    try {
      manifest = JSON.parse(new TextDecoder().decode(await this.fs.readFile(e.manifestPath))) as typeof manifest;
      const st = await this.fs.stat(e.enginePath);
      await this.fs.stat(e.wrapperPath);
      if (st.size !== manifest.engineBytes) return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined;
      throw err;
    }
    const same = manifest.modelSha256 === key.modelSha256 && manifest.trtVersion === formatVersion(key.version) && manifest.precision === key.precision;
    return same ? e : undefined;
  }

  /** Written last, after engine and wrapper, so a crash mid-build never leaves an entry that looks complete. */
  async commit(key: EngineKey, extra: Record<string, unknown> = {}): Promise<EngineEntry> {
    const e = this.entry(key);
    const st = await this.fs.stat(e.enginePath);
    const manifest = { modelSha256: key.modelSha256, trtVersion: formatVersion(key.version), precision: key.precision, engineBytes: st.size, ...extra };
    await this.fs.writeFile(`${e.manifestPath}.tmp`, JSON.stringify(manifest, null, 2));
    await this.fs.rename(`${e.manifestPath}.tmp`, e.manifestPath);
    return e;
  }
}
