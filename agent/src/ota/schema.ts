/**
 * The agent's `ota` config section (to be added to AgentConfig as `ota: Type.Optional(OtaConfig)`).
 * OTA needs the fleet link (`link`) and the fleet's public signing key, pinned in a file.
 */
import { Type, type Static } from '@sinclair/typebox';
import { MODEL_TARGETS } from '../protocol/manifest.js';
import { HealthGateSchema } from './health-window.js';

export const OtaConfig = Type.Object({
  /**
   * The fleet server's Ed25519 public key (PEM, from `fleetctl key export`); manifests must verify against
   * it. While the fleet changes its signing key the file holds both keys, one PEM block after the other,
   * and a manifest signed by either is accepted (docs/rollouts.md, "Changing the signing key").
   */
  publicKeyFile: Type.String({ minLength: 1, 'x-restart': true }),
  /** Artifact target this device runs; artifacts for other targets are refused before download. */
  target: Type.Union(MODEL_TARGETS.map((t) => Type.Literal(t)), { default: 'onnx-cpu', 'x-restart': true }),
  /** Version of the configured `detector.model` until an OTA version is committed. */
  factoryVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /**
   * Committed versions kept on disk (newest first), besides the running one and the previous one (the one
   * a rollback goes to); older version directories are deleted, and a rollback to one downloads it again.
   * At most 32: committed.json remembers that many.
   */
  keepVersions: Type.Integer({ minimum: 1, maximum: 32, default: 3, 'x-restart': true }),
  /** Health window after a swap (the desired state's healthWindowMs overrides windowMs). */
  health: Type.Optional(Type.Partial(HealthGateSchema, { additionalProperties: false })),
}, { additionalProperties: false });
export type OtaConfig = Static<typeof OtaConfig>;
