/**
 * The fleet signing keys an agent pins (config ota.publicKeyFile). The file holds one PEM public key
 * (`fleetctl key export`), or several one after the other while the fleet changes its signing key: the
 * old key and the new one, so that versions signed by either verify (docs/rollouts.md, "Changing the
 * signing key"). A manifest is accepted when its signature verifies against any pinned key. Text
 * outside the PEM blocks (a comment saying which key is which) is ignored, as PEM readers do.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { manifestValidator, SignatureError, verifyManifest, type Manifest } from '../protocol/manifest.js';
import { OtaError } from './errors.js';

const PUBLIC_KEY_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * The public keys in `pemText` (read from `source`, named in errors). Throws OtaError E_KEY when it
 * holds none, or one that is not an Ed25519 public key.
 */
export function parseTrustedKeys(pemText: string, source = 'the pinned key file'): KeyObject[] {
  const blocks = pemText.match(PUBLIC_KEY_BLOCK) ?? [];
  if (blocks.length === 0) {
    // No PUBLIC KEY block: one key in another form node:crypto reads (a certificate, say), as accepted before.
    try {
      return [ed25519(createPublicKey(pemText), source, 1)];
    } catch (err) {
      if (err instanceof OtaError) throw err;
      throw new OtaError('E_KEY', `Expected one or more PEM public keys (-----BEGIN PUBLIC KEY-----, from fleetctl key export) in ${source} but found none (${(err as Error).message}); install the fleet's key there.`, { cause: err });
    }
  }
  return blocks.map((block, i) => {
    try {
      return ed25519(createPublicKey(block), source, i + 1);
    } catch (err) {
      if (err instanceof OtaError) throw err;
      throw new OtaError('E_KEY', `Key ${i + 1} of ${blocks.length} in ${source} is not a valid public key: ${(err as Error).message}; export it again with fleetctl key export.`, { cause: err });
    }
  });
}

function ed25519(key: KeyObject, source: string, n: number): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new OtaError('E_KEY', `Expected Ed25519 public keys in ${source} (fleetctl key export) but key ${n} is ${key.asymmetricKeyType ?? 'of an unknown type'}.`);
  }
  return key;
}

/**
 * The manifest, when its shape is right and its signature verifies against one of `keys`; throws
 * SignatureError (E_SIGNATURE) otherwise.
 */
export function verifyWithTrustedKeys(manifest: unknown, signatureB64: string, keys: readonly KeyObject[], source = 'the pinned key file'): Manifest {
  const shape = manifestValidator.check(manifest);
  // A manifest of the wrong shape, or one key: verifyManifest's own error says it all.
  if (!shape.ok || keys.length === 1) return verifyManifest(manifest, signatureB64, keys[0]!);
  for (const key of keys) {
    try {
      return verifyManifest(shape.value, signatureB64, key);
    } catch (err) {
      if (!(err instanceof SignatureError)) throw err;
    }
  }
  const m = shape.value;
  throw new SignatureError(`Manifest signature of ${m.name}@${m.version} does not verify against any of the ${keys.length} fleet keys pinned in ${source}; the manifest was altered or signed by another key (export the right key with fleetctl key export).`);
}
