/**
 * Serves artifact chunks over MQTT: a device asks on `ef/v1/dev/{id}/ota/req` for a byte range of
 * an artifact and gets it on `.../ota/chunk`. A device may only fetch a version that is in its own
 * desired state, so a device secret does not open the whole registry. Every request is validated;
 * bad ones are counted and dropped (an error reply when the request is well formed but refused).
 * Requests are limited per device (config `ota`). The agent asks for one chunk at a time and waits for
 * it: past the limit its request is held and answered when the device's budget allows, so a fast
 * download is paced, never dropped (a dropped request would cost the agent its request timeout). A
 * device that asks for many at once (3000 made the server read, encode and publish 196 MB in 4 s)
 * keeps only its newest waiting request; each one it replaces is dropped and counted, before parsing.
 */
import { Counter, type Registry } from 'prom-client';
import { compileSchema } from '../../../agent/src/util/schema.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { deviceRoot, parseTopic } from '../../../agent/src/protocol/index.js';
import { OTA_MAX_PAYLOAD_BYTES, OtaRequestSchema, otaTopics, type OtaChunk, type OtaRequest } from '../../../agent/src/protocol/ota.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { LatestOnlyLimiter } from '../ingest/latest-only.js';

const requestValidator = compileSchema(OtaRequestSchema);

export interface ChunkServerOptions {
  registry: ModelRegistry;
  /** Whether this device's desired state holds name@version (it may fetch nothing else). */
  mayFetch: (deviceId: string, name: string, version: string) => boolean;
  publish: (topic: string, payload: Buffer) => void;
  /** Per-device limit on chunk requests (config `ota`); none when absent. */
  rateLimit?: { perDeviceChunkRate: number; perDeviceChunkBurst: number };
  /** Prometheus registry (/metrics) the drop and served counters are registered in; none when absent. */
  metrics?: Registry;
  logger?: Logger;
}

/** Why an ota/req was dropped unanswered: `rate` over the device's limit, the others malformed. */
export const CHUNK_DROP_REASONS = ['topic', 'oversized', 'json', 'schema', 'rate'] as const;
export type ChunkDropReason = (typeof CHUNK_DROP_REASONS)[number];

export interface ChunkServerStats {
  requests: number;
  chunksServed: number;
  bytesServed: number;
  refused: number;
  dropped: number;
  /** `dropped` by reason. */
  droppedBy: Partial<Record<ChunkDropReason, number>>;
}

/** Why a well-formed chunk request is answered with an error (reply.error.code). */
const CHUNK_REFUSAL_CODES = ['E_NOT_DESIRED', 'E_NOT_FOUND', 'E_READ'] as const;
type ChunkRefusalCode = (typeof CHUNK_REFUSAL_CODES)[number];

export class ChunkServer {
  readonly stats: ChunkServerStats = { requests: 0, chunksServed: 0, bytesServed: 0, refused: 0, dropped: 0, droppedBy: {} };
  private readonly log: Logger;
  private readonly loggedDrops = new Set<string>();
  private readonly limiter: LatestOnlyLimiter<Buffer> | undefined;
  /** The same counts as `stats`, for Prometheus (/metrics); undefined without `metrics`. */
  private readonly counters: { dropped: Counter<'reason'>; refused: Counter<'code'>; chunks: Counter; bytes: Counter } | undefined;

  constructor(private readonly opts: ChunkServerOptions) {
    this.log = opts.logger ?? moduleLogger('ota-chunks');
    const registers = opts.metrics ? [opts.metrics] : undefined;
    if (registers) {
      this.counters = {
        dropped: new Counter({ name: 'ef_ota_chunk_requests_dropped_total', help: 'OTA chunk requests dropped unanswered, by reason: rate (over the device\'s limit) or malformed (topic, oversized, json, schema)', labelNames: ['reason'], registers }),
        refused: new Counter({ name: 'ef_ota_chunk_requests_refused_total', help: 'Well-formed OTA chunk requests answered with an error, by code: E_NOT_DESIRED (not in the device\'s desired state), E_NOT_FOUND (no such artifact), E_READ (the artifact file could not be read)', labelNames: ['code'], registers }),
        chunks: new Counter({ name: 'ef_ota_chunks_served_total', help: 'OTA artifact chunks sent to devices', registers }),
        bytes: new Counter({ name: 'ef_ota_chunk_bytes_served_total', help: 'OTA artifact bytes sent to devices (before base64)', registers }),
      };
      // Every reason at 0 from the start: a series that appears only at its first drop makes rate() and alerts miss it.
      for (const reason of CHUNK_DROP_REASONS) this.counters.dropped.inc({ reason }, 0);
      for (const code of CHUNK_REFUSAL_CODES) this.counters.refused.inc({ code }, 0);
    }
    const l = opts.rateLimit;
    this.limiter = l
      ? new LatestOnlyLimiter<Buffer>({
        rate: l.perDeviceChunkRate,
        burst: l.perDeviceChunkBurst,
        deliver: (deviceId, payload) => this.serveRaw(deviceId, payload),
        onSuperseded: (deviceId) => this.drop('rate', deviceId, `over ${l.perDeviceChunkRate} chunk requests/s (burst ${l.perDeviceChunkBurst}) with a newer request waiting`),
      })
      : undefined;
  }

  handle(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t || t.rest !== 'ota/req') { this.drop('topic', topic); return; }
    // Before any parsing: past its limit, a device's flood costs one map lookup a request.
    if (this.limiter) this.limiter.offer(t.deviceId, payload);
    else this.serveRaw(t.deviceId, payload);
  }

  /** Drops the requests waiting for their device's budget (at shutdown; the agent asks again). */
  stop(): void {
    this.limiter?.stop();
  }

  private serveRaw(deviceId: string, payload: Buffer): void {
    if (payload.length > OTA_MAX_PAYLOAD_BYTES.req) { this.drop('oversized', deviceId); return; }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      this.drop('json', deviceId);
      return;
    }
    const r = requestValidator.check(json);
    if (!r.ok) { this.drop('schema', deviceId, `${r.issues[0]?.path} expected ${r.issues[0]?.expected}`); return; }
    this.stats.requests += 1;
    this.serve(deviceId, r.value);
  }

  /** Counts a dropped request (in /api/status → ota.dropped, ota.droppedBy; /metrics ef_ota_chunk_requests_dropped_total) and logs the first of each reason. */
  private drop(reason: ChunkDropReason, deviceId: string, detail?: string): void {
    this.stats.dropped += 1;
    this.stats.droppedBy[reason] = (this.stats.droppedBy[reason] ?? 0) + 1;
    this.counters?.dropped.inc({ reason });
    if (this.loggedDrops.has(reason)) return;
    this.loggedDrops.add(reason);
    const what = reason === 'rate' ? 'an ota/req over its device\'s limit' : 'a malformed ota/req';
    this.log.warn({ reason, deviceId, detail }, `dropped ${what} (logged once per reason; see /api/status ota.droppedBy, /metrics ef_ota_chunk_requests_dropped_total)`);
  }

  private serve(deviceId: string, req: OtaRequest): void {
    const reply = (c: Omit<OtaChunk, 'v' | 'reqId'>) => this.opts.publish(otaTopics.chunk(deviceRoot(deviceId)), Buffer.from(JSON.stringify({ v: 1, reqId: req.reqId, ...c })));
    const refuse = (code: ChunkRefusalCode, message: string) => {
      this.stats.refused += 1;
      this.counters?.refused.inc({ code });
      reply({ offset: req.offset, total: 0, dataBase64: '', eof: true, error: { code, message } });
    };
    if (!this.opts.mayFetch(deviceId, req.name, req.version)) {
      refuse('E_NOT_DESIRED', `${req.name}@${req.version} is not in the desired state of ${deviceId}`);
      return;
    }
    const a = this.opts.registry.artifact(req.name, req.version, req.target);
    if (!a) {
      refuse('E_NOT_FOUND', `no ${req.target} artifact for ${req.name}@${req.version} in the registry`);
      return;
    }
    try {
      const { data, total } = this.opts.registry.readChunk(a, req.offset, req.length);
      this.stats.chunksServed += 1;
      this.stats.bytesServed += data.length;
      this.counters?.chunks.inc();
      this.counters?.bytes.inc(data.length);
      reply({ offset: req.offset, total, dataBase64: data.toString('base64'), eof: req.offset + data.length >= total });
    } catch (err) {
      this.log.error({ err: (err as Error).message, path: a.path }, 'artifact read failed');
      refuse('E_READ', `the server could not read the artifact: ${(err as Error).message}`);
    }
  }
}
