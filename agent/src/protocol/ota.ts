/**
 * OTA payloads: what the server puts in `desired.models[role]`, the chunk request/reply pair under
 * `ef/v1/dev/{id}/ota/...`, and the `ota` block the agent adds to `reported`.
 *
 * Transfer: the agent asks for one chunk at a time (`ota/req`, QoS 1) by byte offset and the server
 * answers on `ota/chunk` (QoS 1). Asking by offset makes resume trivial: after a broker restart or
 * an agent restart, the agent asks again from the length of the partial file it already fsync'd.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ManifestSchema } from './manifest.js';

/** Raw bytes per chunk; the base64 reply stays well under common broker packet limits (256 KiB). */
export const OTA_CHUNK_BYTES = 64 * 1024;
export const OTA_MAX_PAYLOAD_BYTES = { req: 4 * 1024, chunk: 128 * 1024 } as const;

export const otaTopics = {
  req: (root: string) => `${root}/ota/req`,
  chunk: (root: string) => `${root}/ota/chunk`,
};

/** One entry of `desired.models`: the signed manifest travels with the desired state. */
export const DesiredModelSchema = Type.Object({
  version: Type.String({ minLength: 1, maxLength: 64 }),
  /** Absent only when going back to a version the device already holds (rollback). */
  manifest: Type.Optional(ManifestSchema),
  /** Ed25519 signature (base64) of the canonical manifest. */
  signature: Type.Optional(Type.String({ minLength: 16, maxLength: 256 })),
  /** Optional HTTP(S) URL of the artifact; MQTT chunks otherwise. */
  url: Type.Optional(Type.String({ maxLength: 1024 })),
  /** Rollout that asked for it, for the report. */
  rollout: Type.Optional(Type.String({ maxLength: 64 })),
  /** Health window for this install (ms); the agent's default otherwise. */
  healthWindowMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
}, { additionalProperties: false });
export type DesiredModel = Static<typeof DesiredModelSchema>;

export const OtaRequestSchema = Type.Object({
  v: Type.Literal(1),
  reqId: Type.String({ minLength: 1, maxLength: 64 }),
  name: Type.String({ minLength: 1, maxLength: 64 }),
  version: Type.String({ minLength: 1, maxLength: 64 }),
  target: Type.String({ minLength: 1, maxLength: 32 }),
  offset: Type.Integer({ minimum: 0 }),
  length: Type.Integer({ minimum: 1, maximum: OTA_CHUNK_BYTES }),
}, { additionalProperties: false });
export type OtaRequest = Static<typeof OtaRequestSchema>;

export const OtaChunkSchema = Type.Object({
  v: Type.Literal(1),
  reqId: Type.String({ minLength: 1, maxLength: 64 }),
  offset: Type.Integer({ minimum: 0 }),
  /** Size of the whole artifact file as the server holds it. */
  total: Type.Integer({ minimum: 0 }),
  dataBase64: Type.String({ maxLength: 100 * 1024 }),
  eof: Type.Boolean(),
  error: Type.Optional(Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 500 }) }, { additionalProperties: false })),
}, { additionalProperties: false });
export type OtaChunk = Static<typeof OtaChunkSchema>;

export const OTA_PHASES = ['idle', 'downloading', 'verifying', 'staging', 'loading', 'self-test', 'swapped', 'health', 'committed', 'rolled-back', 'refused', 'failed'] as const;
export type OtaPhase = (typeof OTA_PHASES)[number];

/** The `ota` block of `reported` (ReportedSchema allows extra properties). */
export const OtaReportSchema = Type.Object({
  role: Type.String({ maxLength: 64 }),
  phase: Type.Union(OTA_PHASES.map((p) => Type.Literal(p))),
  /** Version being installed (or last attempted). */
  version: Type.Optional(Type.String({ maxLength: 64 })),
  rollout: Type.Optional(Type.String({ maxLength: 64 })),
  /** Why it was refused, failed or rolled back. */
  reason: Type.Optional(Type.String({ maxLength: 500 })),
  code: Type.Optional(Type.String({ maxLength: 64 })),
  bytes: Type.Optional(Type.Integer({ minimum: 0 })),
  resumedFrom: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Health window figures: new model vs the previous one. */
  health: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Number())),
  ts: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
export type OtaReport = Static<typeof OtaReportSchema>;
