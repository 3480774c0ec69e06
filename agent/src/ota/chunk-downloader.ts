/**
 * Artifact transfer over MQTT, one chunk at a time by byte offset (protocol/ota.ts). The partial
 * file is appended and fsync'd after each chunk, so its length is always a valid resume point: after
 * a broker restart the request times out and is asked again; after an agent restart the download
 * starts from the partial file's length. Retries are bounded; a stalled transfer fails with a reason.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, statSync } from 'node:fs';
import { compileSchema } from '../util/schema.js';
import { OTA_CHUNK_BYTES, OTA_MAX_PAYLOAD_BYTES, OtaChunkSchema, type OtaChunk, type OtaRequest } from '../protocol/ota.js';
import type { Manifest } from '../protocol/manifest.js';
import { OtaError } from './errors.js';
import { writeAll } from './fs-atomic.js';

const chunkValidator = compileSchema(OtaChunkSchema);

export interface ChunkDownloaderOptions {
  /** Sends a request; returns false while offline (the request is retried after the timeout). */
  send: (req: OtaRequest) => boolean;
  requestTimeoutMs?: number;
  /** Consecutive timeouts before giving up. */
  maxRetries?: number;
  chunkBytes?: number;
  /** Called after each chunk is on disk, with the bytes held so far. */
  onProgress?: (bytes: number, total: number) => void;
}

export interface DownloadResult {
  bytes: number;
  resumedFrom: number;
  chunks: number;
  retries: number;
}

export class ChunkDownloader {
  private pending: { reqId: string; resolve: (c: OtaChunk) => void } | undefined;
  /** Chunk replies that did not match a pending request or the schema (late duplicates after a retry). */
  stray = 0;

  constructor(private readonly opts: ChunkDownloaderOptions) {}

  /** Feed every message from `ota/chunk` here. */
  onChunkMessage(payload: Buffer): void {
    if (payload.length > OTA_MAX_PAYLOAD_BYTES.chunk) { this.stray += 1; return; }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      this.stray += 1;
      return;
    }
    const r = chunkValidator.check(json);
    if (!r.ok || !this.pending || r.value.reqId !== this.pending.reqId) { this.stray += 1; return; }
    const p = this.pending;
    this.pending = undefined;
    p.resolve(r.value);
  }

  /** Downloads into `partPath` until it holds `manifest.size` bytes; resumes from what is there. */
  async download(manifest: Manifest, partPath: string, signal?: AbortSignal): Promise<DownloadResult> {
    const resumedFrom = existsSync(partPath) ? Math.min(statSync(partPath).size, manifest.size) : 0;
    let offset = resumedFrom;
    let chunks = 0;
    let retries = 0;
    let consecutive = 0;
    const maxRetries = this.opts.maxRetries ?? 20;
    const chunkBytes = Math.min(this.opts.chunkBytes ?? OTA_CHUNK_BYTES, OTA_CHUNK_BYTES);
    const fd = openSync(partPath, 'a');
    try {
      while (offset < manifest.size) {
        if (signal?.aborted) throw new OtaError('E_ABORTED', `Download of ${manifest.name}@${manifest.version} aborted at ${offset} of ${manifest.size} bytes.`);
        const req: OtaRequest = {
          v: 1, reqId: randomUUID(), name: manifest.name, version: manifest.version, target: manifest.target,
          offset, length: Math.min(chunkBytes, manifest.size - offset),
        };
        const chunk = await this.ask(req);
        if (!chunk) {
          retries += 1;
          consecutive += 1;
          if (consecutive > maxRetries) throw new OtaError('E_TRANSFER_STALLED', `No chunk of ${manifest.name}@${manifest.version} arrived after ${maxRetries} retries at offset ${offset}; check the link to the fleet server. The ${offset} bytes received are kept for the next attempt.`);
          continue;
        }
        consecutive = 0;
        if (chunk.error) throw new OtaError(chunk.error.code, `The server refused ${manifest.name}@${manifest.version}: ${chunk.error.message}`);
        if (chunk.total < manifest.size) {
          throw new OtaError('E_TRUNCATED', `Artifact ${manifest.name}@${manifest.version} is truncated on the server: expected ${manifest.size} bytes but it holds ${chunk.total}; republish the model.`);
        }
        if (chunk.offset !== offset) { this.stray += 1; continue; }
        const data = Buffer.from(chunk.dataBase64, 'base64');
        if (data.length === 0) throw new OtaError('E_TRUNCATED', `Artifact ${manifest.name}@${manifest.version} ended at ${offset} bytes but its manifest says ${manifest.size}.`);
        const take = data.subarray(0, manifest.size - offset);
        writeAll(fd, take);
        fsyncSync(fd);
        offset += take.length;
        chunks += 1;
        this.opts.onProgress?.(offset, manifest.size);
      }
    } finally {
      closeSync(fd);
      this.pending = undefined;
    }
    return { bytes: offset, resumedFrom, chunks, retries };
  }

  private ask(req: OtaRequest): Promise<OtaChunk | undefined> {
    const timeoutMs = this.opts.requestTimeoutMs ?? 3000;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.pending?.reqId === req.reqId) this.pending = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.pending = { reqId: req.reqId, resolve: (c) => { clearTimeout(timer); resolve(c); } };
      this.opts.send(req);
    });
  }
}
