/**
 * Artifact download from an HTTP(S) URL (the optional alternative to MQTT chunks, e.g. a CDN).
 * Resume uses a Range request from the partial file's length (RFC 9110 §14.2); a server that
 * ignores Range (200 instead of 206) makes us start over rather than append a second copy. Every
 * write is fsync'd before the next read, like the chunk path, so the partial file stays a valid
 * resume point. Integrity is still checked afterwards against the signed manifest.
 */
import { closeSync, existsSync, fsyncSync, openSync, statSync, ftruncateSync } from 'node:fs';
import type { Manifest } from '../protocol/manifest.js';
import { OtaError } from './errors.js';
import { writeAll } from './fs-atomic.js';
import type { DownloadResult } from './chunk-downloader.js';

export interface HttpDownloadOptions {
  url: string;
  manifest: Manifest;
  partPath: string;
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
  onProgress?: (bytes: number, total: number) => void;
}

export async function downloadHttp(o: HttpDownloadOptions): Promise<DownloadResult> {
  const { manifest } = o;
  if (!/^https?:\/\//.test(o.url)) throw new OtaError('E_DESIRED', `Expected an http:// or https:// artifact URL but received ${o.url.slice(0, 80)}`);
  let offset = existsSync(o.partPath) ? Math.min(statSync(o.partPath).size, manifest.size) : 0;
  const resumedFrom = offset;
  if (offset >= manifest.size) return { bytes: offset, resumedFrom, chunks: 0, retries: 0 };
  let res: Response;
  try {
    res = await (o.fetchImpl ?? fetch)(o.url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal: o.signal });
  } catch (err) {
    throw new OtaError('E_TRANSFER_STALLED', `Could not fetch ${o.url}: ${(err as Error).message}; ${offset} bytes kept for the next attempt.`);
  }
  if (res.status !== 200 && res.status !== 206) throw new OtaError(res.status === 404 ? 'E_NOT_FOUND' : 'E_TRANSFER_STALLED', `GET ${o.url} answered HTTP ${res.status}; expected 200 or 206.`);
  const fd = openSync(o.partPath, 'a');
  let chunks = 0;
  try {
    if (res.status === 200 && offset > 0) {
      ftruncateSync(fd, 0);
      offset = 0;
    }
    if (!res.body) throw new OtaError('E_TRUNCATED', `GET ${o.url} returned no body.`);
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      const take = part.subarray(0, Math.max(0, manifest.size - offset));
      if (take.length > 0) {
        writeAll(fd, take);
        fsyncSync(fd);
        offset += take.length;
        chunks += 1;
        o.onProgress?.(offset, manifest.size);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { bytes: offset, resumedFrom, chunks, retries: 0 };
}
