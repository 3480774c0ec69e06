/**
 * The agent's configuration (`/etc/edge-agent/agent.json`). This TypeBox schema is the one source of
 * the TypeScript type, the defaults and `configs/schema/agent.schema.json` (`npm run gen:schema`).
 * Fields marked `"x-restart": true` need a restart to change; the others reload live (SIGHUP or a
 * pushed config revision).
 */
import { Type, type Static } from '@sinclair/typebox';
import { SourceConfig } from '../capture/schema.js';
import { MAX_CAMERAS } from '../capture/thread-pool.js';
import { ScheduleConfigSchema } from '../schedule/schema.js';
import { TrackerConfigSchema } from '../track/schema.js';
import { RulesConfigSchema } from '../rules/schema.js';
import { compileSchema, withDefault } from '../util/schema.js';
import { PrivacyConfig } from '../privacy/schema.js';
import { OtaConfig } from '../ota/schema.js';
import { DEVICE_ID_PATTERN } from '../protocol/topics.js';

const restart = { 'x-restart': true } as const;

/**
 * detector.runTimeoutMs's default. Under WatchdogSec=30s (configs/systemd), so the agent names a hung
 * run before systemd's watchdog kills it without a word, and over 100x the slowest run measured
 * here (CenterNet p99 131 ms, docs/benchmarks.md): a slow board does not come near it.
 */
export const DEFAULT_RUN_TIMEOUT_MS = 20_000;

/**
 * detector.loadTimeoutMs's default: a model installed over the air that has not loaded and warmed up
 * within this time is refused. Above the trtexec engine build's own limit (30 min,
 * TRTEXEC_BUILD_TIMEOUT_MS in platform-adapters/tensorrt/adapter.ts) with room for the warm-up: at
 * 10 min a TensorRT box refused a model whose first engine build took longer, while the build itself
 * was allowed 30.
 */
export const DEFAULT_LOAD_TIMEOUT_MS = 35 * 60_000;

export const DetectorConfig = Type.Object({
  /** Path of the model; its metadata file (`model.meta.json`) must sit next to it. */
  model: Type.String({ minLength: 1, ...restart }),
  /** Execution providers in order; a later one is used only when the earlier ones fail to load. */
  providers: Type.Array(Type.Union([Type.Literal('cpu'), Type.Literal('cuda'), Type.Literal('tensorrt')]), { minItems: 1, default: ['cpu'], ...restart }),
  /** ONNX Runtime intra-op threads; all cores when absent. */
  threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, ...restart })),
  /** Overrides the decoder's score threshold from the model metadata. */
  scoreThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** Keep only these labels (e.g. ["person", "car"]); every label when empty. */
  labels: Type.Array(Type.String(), { default: [], ...restart }),
  /**
   * An inference run not answered within this time (a hung execution provider) stops the agent with
   * E_INFER_TIMEOUT, so that its supervisor restarts it. The model's load and warm-up are not timed
   * by it (loadTimeoutMs).
   */
  runTimeoutMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: DEFAULT_RUN_TIMEOUT_MS, ...restart }),
  /**
   * A model installed over the air that has not loaded and run its warm-up within this time (a hung
   * load, an engine build past it) is refused (E_LOAD_TIMEOUT), its worker stopped; the running model
   * keeps running. The load at start is bounded by the service manager instead (TimeoutStartSec).
   */
  loadTimeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: DEFAULT_LOAD_TIMEOUT_MS, ...restart }),
}, { additionalProperties: false });

export const CameraConfig = Type.Object({
  source: { ...SourceConfig, 'x-restart': true } as typeof SourceConfig,
  rules: withDefault(RulesConfigSchema, {}),
}, { additionalProperties: false });

export const OutputConfig = Type.Object({
  /** Write one NDJSON line per frame to this file ("-" for stdout); none when absent. */
  ndjson: Type.Optional(Type.String({ minLength: 1 })),
  /** Include predicted (tracker-only) boxes in the frame lines. */
  includeTracks: Type.Boolean({ default: true }),
}, { additionalProperties: false });

export const LinkConfig = Type.Object({
  /** `mqtt://host:1883` or `mqtts://host:8883` (TLS with the pinned CA in caFile). */
  url: Type.String({ pattern: '^mqtts?://', ...restart }),
  /** PEM of the CA that signed the broker's certificate; the only CA trusted. */
  caFile: Type.Optional(Type.String({ ...restart })),
  /** Device secret file; systemd's LoadCredential=device-secret takes precedence. */
  secretFile: Type.Optional(Type.String({ ...restart })),
  protocolVersion: Type.Union([Type.Literal(5), Type.Literal(4), Type.Literal('auto')], { default: 'auto', ...restart }),
}, { additionalProperties: false });

export const TelemetryConfig = Type.Object({
  intervalMs: Type.Integer({ minimum: 1000, default: 10_000 }),
  /** Serve Prometheus metrics on 127.0.0.1:PORT (0 = any free port); off when absent. */
  prometheusPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, ...restart })),
}, { additionalProperties: false });

export const AgentConfig = Type.Object({
  /** Editors' completion: "$schema": "/opt/edge-agent/current/configs/schema/agent.schema.json". Ignored by the agent. */
  $schema: Type.Optional(Type.String()),
  // The MQTT protocol's device id (agent/src/protocol/topics.ts): a '.' or a 65th character was accepted here and refused by the link.
  deviceId: Type.String({ pattern: DEVICE_ID_PATTERN, default: 'edge-dev', ...restart }),
  /** Board preset from configs/boards (pipeline decode elements, default providers). */
  board: Type.Optional(Type.String({ pattern: '^[a-z0-9-]+$', ...restart })),
  /** Where the agent keeps its outbox, models and version directories. */
  stateDir: Type.String({ minLength: 1, default: '/var/lib/edge-agent', ...restart }),
  detector: DetectorConfig,
  /** Rules reload live; sources, and adding or removing cameras, need a restart. */
  // At most MAX_CAMERAS: the libuv pool the launchers set is sized for them (capture/thread-pool.ts).
  cameras: Type.Array(CameraConfig, { minItems: 1, maxItems: MAX_CAMERAS, description: `at most ${MAX_CAMERAS} cameras per agent (each holds two threads of the agent's libuv pool, which the systemd unit and bin/edge-agent size for ${MAX_CAMERAS} cameras): run more cameras on another agent` }),
  schedule: { ...withDefault(ScheduleConfigSchema, { motion: {} }), ...restart },
  tracker: { ...withDefault(TrackerConfigSchema, {}), ...restart },
  output: { ...withDefault(OutputConfig, {}), ...restart },
  /** The fleet server's broker; the agent runs stand-alone when absent. */
  link: Type.Optional(LinkConfig),
  /** Over-the-air model updates from the fleet (needs `link`). */
  ota: Type.Optional(OtaConfig),
  telemetry: { ...withDefault(TelemetryConfig, {}), ...restart },
  privacy: { ...withDefault(PrivacyConfig, {}), ...restart },
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false, $id: 'https://edge-fleet.dev/schema/agent.json', title: 'Edge Fleet agent configuration' });

export type AgentConfig = Static<typeof AgentConfig>;
export type CameraConfig = Static<typeof CameraConfig>;
export type DetectorConfig = Static<typeof DetectorConfig>;

export const agentConfigValidator = compileSchema(AgentConfig);
