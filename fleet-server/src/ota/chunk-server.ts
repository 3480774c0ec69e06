/**
 * Serves artifact chunks over MQTT: a device asks on `ef/v1/dev/{id}/ota/req` for a byte range of
 * an artifact and gets it on `.../ota/chunk`. A device may only fetch a version that is in its own
 * desired state, so a device secret does not open the whole registry. Every request is validated;
 * bad ones are counted and dropped (an error reply when the request is well formed but refused).
 */
import { compileSchema } from '../../../agent/src/util/schema.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { deviceRoot, parseTopic } from '../../../agent/src/protocol/index.js';
import { OTA_MAX_PAYLOAD_BYTES, OtaRequestSchema, otaTopics, type OtaChunk, type OtaRequest } from '../../../agent/src/protocol/ota.js';
import type { ModelRegistry } from '../registry/model-registry.js';

const requestValidator = compileSchema(OtaRequestSchema);

export interface ChunkServerOptions {
  registry: ModelRegistry;
  /** Whether this device's desired state holds name@version (it may fetch nothing else). */
  mayFetch: (deviceId: string, name: string, version: string) => boolean;
  publish: (topic: string, payload: Buffer) => void;
  logger?: Logger;
}

export interface ChunkServerStats {
  requests: number;
  chunksServed: number;
  bytesServed: number;
  refused: number;
  dropped: number;
}

export class ChunkServer {
  readonly stats: ChunkServerStats = { requests: 0, chunksServed: 0, bytesServed: 0, refused: 0, dropped: 0 };
  private readonly log: Logger;
  private readonly loggedDrops = new Set<string>();

  constructor(private readonly opts: ChunkServerOptions) {
    this.log = opts.logger ?? moduleLogger('ota-chunks');
  }

  handle(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t || t.rest !== 'ota/req') { this.drop('topic', topic); return; }
    if (payload.length > OTA_MAX_PAYLOAD_BYTES.req) { this.drop('oversized', t.deviceId); return; }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      this.drop('json', t.deviceId);
      return;
    }
    const r = requestValidator.check(json);
    if (!r.ok) { this.drop('schema', t.deviceId, `${r.issues[0]?.path} expected ${r.issues[0]?.expected}`); return; }
    this.stats.requests += 1;
    this.serve(t.deviceId, r.value);
  }

  /** Counts a malformed request (in /api/status → ota.dropped) and logs the first of each reason. */
  private drop(reason: string, deviceId: string, detail?: string): void {
    this.stats.dropped += 1;
    if (this.loggedDrops.has(reason)) return;
    this.loggedDrops.add(reason);
    this.log.warn({ reason, deviceId, detail }, 'dropped a malformed ota/req (logged once per reason; see /api/status ota.dropped)');
  }

  private serve(deviceId: string, req: OtaRequest): void {
    const reply = (c: Omit<OtaChunk, 'v' | 'reqId'>) => this.opts.publish(otaTopics.chunk(deviceRoot(deviceId)), Buffer.from(JSON.stringify({ v: 1, reqId: req.reqId, ...c })));
    const refuse = (code: string, message: string) => {
      this.stats.refused += 1;
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
      reply({ offset: req.offset, total, dataBase64: data.toString('base64'), eof: req.offset + data.length >= total });
    } catch (err) {
      this.log.error({ err: (err as Error).message, path: a.path }, 'artifact read failed');
      refuse('E_READ', `the server could not read the artifact: ${(err as Error).message}`);
    }
  }
}
