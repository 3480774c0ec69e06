/**
 * Model artifact manifests (DESIGN.md "Models and artifacts"), shared by the fleet server (signs)
 * and the agent (verifies). The signature is Ed25519 (RFC 8032) over the canonical JSON of the
 * manifest: keys sorted at every level, no whitespace, so both sides hash the same bytes whatever
 * order a JSON encoder used. Keys travel as SPKI PEM; agents pin the server's public key.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';
import { EdgeFleetError } from '../util/errors.js';

/** Names and versions become directory names on the server and the devices: no separators, no "." or "..". */
const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' });
export const MODEL_TARGETS = ['onnx-cpu', 'onnx-trt', 'tflite', 'coreml'] as const;

/**
 * The artifact's file name in a model directory, by target: the runtime is chosen from the
 * extension (agent/src/infer/detector.ts adapterFor), so a TFLite artifact must not be named .onnx.
 */
export function artifactFileName(target: (typeof MODEL_TARGETS)[number]): string {
  return target === 'tflite' ? 'model.tflite' : target === 'coreml' ? 'model.mlmodel' : 'model.onnx';
}

export const TensorSpecSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 256 }),
  dims: Type.Optional(Type.Array(Type.Union([Type.Integer(), Type.String({ maxLength: 64 }), Type.Null()]), { maxItems: 8 })),
  type: Type.Optional(Type.String({ maxLength: 32 })),
}, { additionalProperties: false });

export const ManifestSchema = Type.Object({
  name: Name,
  version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.+-]*$' }),
  target: Type.Union(MODEL_TARGETS.map((t) => Type.Literal(t))),
  precision: Type.Union([Type.Literal('fp32'), Type.Literal('fp16'), Type.Literal('int8')]),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  size: Type.Integer({ minimum: 1, description: 'artifact size in bytes' }),
  inputs: Type.Array(TensorSpecSchema, { maxItems: 16 }),
  outputs: Type.Array(TensorSpecSchema, { maxItems: 16 }),
  /** The model metadata's preprocess spec (agent/src/model/metadata.ts), verbatim. */
  preprocess: Type.Record(Type.String(), Type.Unknown()),
  /** The model metadata's decoder spec, verbatim. */
  decoder: Type.Record(Type.String(), Type.Unknown()),
  labels: Type.Array(Type.String({ maxLength: 128 }), { maxItems: 10_000 }),
  metrics: Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.Number(), Type.String({ maxLength: 256 }), Type.Null()])),
  createdAt: Type.String({ minLength: 10, maxLength: 40, description: 'ISO 8601 UTC' }),
}, { additionalProperties: false });
export type Manifest = Static<typeof ManifestSchema>;
export type ModelTarget = Manifest['target'];

export const manifestValidator = compileSchema(ManifestSchema);

export class SignatureError extends EdgeFleetError {
  constructor(message: string) {
    super('E_SIGNATURE', message);
  }
}

/** JSON with object keys sorted at every level and no whitespace (numbers and strings as JSON.stringify writes them). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function signManifest(manifest: Manifest, privateKeyPem: string | KeyObject): string {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  // Ed25519 takes the message itself: the algorithm argument must be null (node:crypto docs, crypto.sign).
  return sign(null, Buffer.from(canonicalJson(manifest), 'utf8'), key).toString('base64');
}

/**
 * Checks the manifest's shape and its signature against the pinned public key. Returns the manifest
 * or throws SignatureError naming what was wrong.
 */
export function verifyManifest(manifest: unknown, signatureB64: string, publicKeyPem: string | KeyObject): Manifest {
  const r = manifestValidator.check(manifest);
  if (!r.ok) {
    const i = r.issues[0];
    throw new SignatureError(`Manifest does not match the manifest schema: ${i?.path || '/'} expected ${i?.expected} but received ${i?.received}; republish the model with fleetctl model publish.`);
  }
  const key = typeof publicKeyPem === 'string' ? createPublicKey(publicKeyPem) : publicKeyPem;
  let ok: boolean;
  try {
    ok = verify(null, Buffer.from(canonicalJson(r.value), 'utf8'), key, Buffer.from(signatureB64, 'base64'));
  } catch (err) {
    throw new SignatureError(`Manifest signature could not be checked: ${(err as Error).message}`);
  }
  if (!ok) {
    throw new SignatureError(`Manifest signature of ${r.value.name}@${r.value.version} does not verify against the pinned fleet key; the manifest was altered or signed by another key (export the right key with fleetctl key export).`);
  }
  return r.value;
}
