/**
 * Payload schemas of every MQTT message (JSON, UTF-8). Each TypeBox schema is the single source of
 * the TypeScript type and of the JSON Schema that ajv checks where the message arrives (agent for
 * `desired`/`cmd`, fleet server for the rest). `v` is the payload format version; a receiver refuses
 * versions it does not know. OTA payloads are added by the OTA module next to these.
 */
import { Type, type Static } from '@sinclair/typebox';

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
// 8.64e15 ms is the last instant a JavaScript Date can hold (ECMA-262 §21.4.1.1): a device sending
// nanoseconds would otherwise store times no page can format.
const EpochMs = Type.Integer({ minimum: 0, maximum: 8.64e15, description: 'milliseconds since the Unix epoch (UTC)' });
const Count = Type.Integer({ minimum: 0 });
const Ms = Type.Number({ minimum: 0 });
const Label = Type.String({ minLength: 1, maxLength: 64 });
const Version = Type.String({ minLength: 1, maxLength: 64 });

/** Largest payload a receiver accepts per kind, in bytes; bigger ones are dropped and counted. */
export const MAX_PAYLOAD_BYTES = {
  state: 8 * 1024,
  telemetry: 32 * 1024,
  reported: 32 * 1024,
  desired: 32 * 1024,
  cmd: 16 * 1024,
  ack: 32 * 1024,
  'cmd/res': 64 * 1024,
  /** An alert may carry a redacted JPEG snapshot as base64 (≈ 4/3 of the JPEG size). */
  alert: 512 * 1024,
} as const;

/** Most thermal zones and drift classes a telemetry message carries (the agent keeps the hottest / most frequent). */
export const TELEMETRY_MAX_ZONES = 32;
export const DRIFT_MAX_CLASSES = 100;
/** Most cameras a telemetry message lists (the agent lists those not `up` first). */
export const TELEMETRY_MAX_CAMERAS = 32;

/** Longest snapshot an alert carries, as base64; the JPEG itself: 3/4 of it. */
export const SNAPSHOT_MAX_BASE64 = 480 * 1024;
export const SNAPSHOT_MAX_JPEG_BYTES = (SNAPSHOT_MAX_BASE64 / 4) * 3;

export const BoxSchema = Type.Object({
  x: Type.Number(), y: Type.Number(), w: Type.Number({ minimum: 0 }), h: Type.Number({ minimum: 0 }),
}, { additionalProperties: false, description: 'box in source pixels of the camera frame' });

export const PlatformSchema = Type.Object({
  os: Type.String({ maxLength: 64 }),
  arch: Type.String({ maxLength: 32 }),
  board: Type.Optional(Type.String({ maxLength: 64 })),
  runtime: Type.Optional(Type.String({ maxLength: 64 })),
  node: Type.Optional(Type.String({ maxLength: 32 })),
}, { additionalProperties: false });

/** Installed model versions by model role (`detector`, `faces`, ...). */
export const ModelVersionsSchema = Type.Record(Label, Version, { maxProperties: 32 });

export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('failed')]),
  reasons: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 16, default: [] }),
}, { additionalProperties: false });

/** `state` (retained). The agent publishes online=true on connect; its last will is online=false. */
export const StateSchema = Type.Object({
  v: Type.Literal(1),
  online: Type.Boolean(),
  ts: EpochMs,
  agentVersion: Type.Optional(Version),
  platform: Type.Optional(PlatformSchema),
  models: Type.Optional(ModelVersionsSchema),
  health: Type.Optional(HealthSchema),
}, { additionalProperties: false });
export type StatePayload = Static<typeof StateSchema>;

export const StageLatencySchema = Type.Object({
  count: Count, p50Ms: Ms, p95Ms: Ms, p99Ms: Ms,
}, { additionalProperties: false });

export const DriftSchema = Type.Object({
  baselineReady: Type.Boolean(),
  threshold: Type.Number({ minimum: 0 }),
  flagged: Type.Boolean(),
  /** Population stability index of each signal against the baseline window; absent until measurable. */
  psi: Type.Object({
    brightness: Type.Optional(Type.Number({ minimum: 0 })),
    contrast: Type.Optional(Type.Number({ minimum: 0 })),
    confidence: Type.Optional(Type.Number({ minimum: 0 })),
    classMix: Type.Optional(Type.Number({ minimum: 0 })),
  }, { additionalProperties: false }),
  /** Which signals are past the threshold. */
  flags: Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 }),
  /** Current window: mean input brightness and contrast (0–255 luma) and confidence histogram. */
  current: Type.Object({
    brightnessMean: Type.Optional(Type.Number()),
    contrastMean: Type.Optional(Type.Number()),
    confidenceHistogram: Type.Array(Count, { maxItems: 32 }),
    classMix: Type.Record(Label, Type.Number({ minimum: 0, maximum: 1 }), { maxProperties: DRIFT_MAX_CLASSES }),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
export type DriftReport = Static<typeof DriftSchema>;

/**
 * One camera as it is now. `starting`: no frame yet; `up`: frames arrive; `reconnecting`: its source
 * failed since its last frame and is being restarted; `failed`: it gave up (reconnect.maxRetries spent)
 * and stays down until the agent restarts; `ended`: its stream finished (a file, `--frames N`).
 */
export const CameraTelemetrySchema = Type.Object({
  id: Label,
  status: Type.Union([Type.Literal('starting'), Type.Literal('up'), Type.Literal('reconnecting'), Type.Literal('failed'), Type.Literal('ended')]),
  /** Frames its capture delivered, and restarts of its source, since the agent started. */
  framesIn: Count,
  restarts: Count,
  /** Size of its last frame, source pixels. */
  width: Type.Optional(Type.Integer({ minimum: 1 })),
  height: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Why it failed, or its source's last error; URL credentials masked. */
  lastError: Type.Optional(Type.String({ maxLength: 200 })),
}, { additionalProperties: false });
export type CameraTelemetry = Static<typeof CameraTelemetrySchema>;

/** `telemetry` (QoS 0, every `intervalMs`). Counters are totals since the agent started. */
export const TelemetrySchema = Type.Object({
  v: Type.Literal(1),
  ts: EpochMs,
  intervalMs: Type.Integer({ minimum: 1 }),
  uptimeS: Type.Number({ minimum: 0 }),
  frames: Type.Object({
    in: Count,
    processed: Count,
    dropped: Type.Record(Label, Count, { maxProperties: 32 }),
  }, { additionalProperties: false }),
  detectFps: Type.Number({ minimum: 0 }),
  stages: Type.Record(Label, StageLatencySchema, { maxProperties: 32 }),
  eventLoop: Type.Object({ p50Ms: Ms, p99Ms: Ms, maxMs: Ms }, { additionalProperties: false }),
  cpu: Type.Object({ processPercent: Type.Number({ minimum: 0 }), load1: Type.Number({ minimum: 0 }) }, { additionalProperties: false }),
  memory: Type.Object({
    rssBytes: Count, heapUsedBytes: Count, systemFreeBytes: Count, systemTotalBytes: Count,
  }, { additionalProperties: false }),
  /** Thermal zones in °C by zone type, where the board exposes /sys/class/thermal. */
  temperatureC: Type.Optional(Type.Record(Label, Type.Number(), { maxProperties: TELEMETRY_MAX_ZONES })),
  models: ModelVersionsSchema,
  drift: DriftSchema,
  outbox: Type.Object({ pending: Count, dropped: Count }, { additionalProperties: false }),
  /** Per camera (absent from agents before it; a server before it refuses a message that has it). */
  cameras: Type.Optional(Type.Array(CameraTelemetrySchema, { maxItems: TELEMETRY_MAX_CAMERAS })),
}, { additionalProperties: false });
export type TelemetryPayload = Static<typeof TelemetrySchema>;

export const SnapshotSchema = Type.Union([
  Type.Object({
    contentType: Type.Literal('image/jpeg'),
    /** Set by the redactor; the server refuses snapshots not marked redacted (privacy fails closed). */
    redacted: Type.Literal(true),
    width: Type.Integer({ minimum: 1 }),
    height: Type.Integer({ minimum: 1 }),
    dataBase64: Type.String({ minLength: 4, maxLength: SNAPSHOT_MAX_BASE64, pattern: '^[A-Za-z0-9+/]+={0,2}$' }),
  }, { additionalProperties: false }),
  Type.Object({
    redacted: Type.Literal(true),
    /** Reference to a snapshot stored elsewhere (e.g. a URL or object key). */
    ref: Type.String({ minLength: 1, maxLength: 512 }),
  }, { additionalProperties: false }),
]);

/**
 * `alert` (QoS 1 from the persistent outbox). `id` is unique per alert and makes delivery idempotent:
 * the server stores an id once however often it arrives. Fields follow the rules engine's alert event.
 */
export const AlertSchema = Type.Object({
  v: Type.Literal(1),
  id: Id,
  ts: EpochMs,
  /**
   * Position in the device's outbox, strictly increasing per device (SQLite AUTOINCREMENT never
   * reuses a value). Arrival order can differ after a loss and resend; this is the device's order.
   */
  seq: Type.Optional(Type.Integer({ minimum: 0 })),
  camera: Label,
  rule: Label,
  /** Kind of rule that fired: zone, line, dwell, count, ... */
  ruleKind: Type.Optional(Label),
  trackId: Type.Optional(Type.Integer({ minimum: 0 })),
  class: Label,
  classId: Type.Optional(Type.Integer({ minimum: 0 })),
  score: Type.Number({ minimum: 0, maximum: 1 }),
  box: BoxSchema,
  zone: Type.Optional(Label),
  /** Anything rule-specific (count, dwellMs, line direction); small. */
  details: Type.Optional(Type.Record(Label, Type.Union([Type.String({ maxLength: 200 }), Type.Number(), Type.Boolean()]), { maxProperties: 16 })),
  snapshot: Type.Optional(SnapshotSchema),
}, { additionalProperties: false });
export type AlertPayload = Static<typeof AlertSchema>;

/**
 * `ack` (QoS 1, server → device): alert ids the server has stored (or already had). A broker's
 * PUBACK only says the broker took a message; brokers can still lose it (restart without
 * persistence, a session restored without its subscriptions), so the agent keeps an alert in its
 * outbox until this end-to-end receipt arrives, and resends it after `ackTimeoutMs` otherwise.
 */
export const AckSchema = Type.Object({
  v: Type.Literal(1),
  ids: Type.Array(Id, { minItems: 1, maxItems: 256 }),
}, { additionalProperties: false });
export type AckPayload = Static<typeof AckSchema>;

/** `desired` (retained, server → device): what the device should run. */
export const DesiredSchema = Type.Object({
  v: Type.Literal(1),
  rev: Type.Integer({ minimum: 0 }),
  ts: EpochMs,
  /**
   * The identity of the server's rev counter (made once per server database): revs compare only
   * within one epoch, as a reset database starts them at 1 again. Absent from servers before it.
   */
  epoch: Type.Optional(Id),
  models: Type.Record(Label, Type.Object({ version: Version }, { additionalProperties: true }), { maxProperties: 32 }),
  configRevision: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });
export type DesiredPayload = Static<typeof DesiredSchema>;

/** `reported` (retained, device → server): what is installed and running, and health. */
export const ReportedSchema = Type.Object({
  v: Type.Literal(1),
  ts: EpochMs,
  /** `desired.rev` the device last converged to (or is converging to). */
  rev: Type.Optional(Type.Integer({ minimum: 0 })),
  models: ModelVersionsSchema,
  configRevision: Type.Optional(Type.Integer({ minimum: 0 })),
  health: HealthSchema,
}, { additionalProperties: true });
export type ReportedPayload = Static<typeof ReportedSchema>;

/** `cmd` (server → device) and its reply on `cmd/res` with the same id. */
export const CmdSchema = Type.Object({
  v: Type.Literal(1),
  id: Id,
  ts: EpochMs,
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9-]*$' }),
  args: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 32 })),
}, { additionalProperties: false });
export type CmdPayload = Static<typeof CmdSchema>;

export const CmdResultSchema = Type.Object({
  v: Type.Literal(1),
  id: Id,
  ts: EpochMs,
  ok: Type.Boolean(),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1000 }) }, { additionalProperties: false })),
}, { additionalProperties: false });
export type CmdResultPayload = Static<typeof CmdResultSchema>;
