/**
 * The fleet signing keys an agent pins (config ota.publicKeyFile). The file holds one PEM public key
 * (`fleetctl key export`), or several one after the other while the fleet changes its signing key: the
 * old key and the new one, so that versions signed by either verify (docs/rollouts.md, "Changing the
 * signing key"). A manifest is accepted when its signature verifies against any pinned key. Text
 * outside the PEM blocks (a comment saying which key is which) is ignored, as PEM readers do. A block
 * that is no usable public key (damaged, another type, a private key) is skipped and logged; only a
 * file with no usable key fails the start.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { manifestValidator, SignatureError, verifyManifest, type Manifest } from '../protocol/manifest.js';
import { OtaError } from './errors.js';

/** A PEM block's first line: `-----BEGIN PUBLIC KEY-----`, `-----BEGIN PRIVATE KEY-----`, `-----BEGIN CERTIFICATE-----`... (RFC 7468 §2). */
const PEM_BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;

/** The pinned keys, and the blocks of the key file that were skipped (each message names the block and what to do). */
export interface TrustedKeys { keys: KeyObject[]; skipped: string[] }

/**
 * The public keys in `pemText` (read from `source`, named in messages). A block that is no usable
 * Ed25519 public key (a damaged paste, another key type) is skipped and said so in `skipped`, so that
 * one bad block in a key change does not stop every box that restarts; so is a private key, which is
 * never taken for its public half (it must not sit on the boxes). Throws OtaError E_KEY only when no
 * key is usable, with every block's problem.
 */
export function readTrustedKeys(pemText: string, source = 'the pinned key file'): TrustedKeys {
  const blocks = pemBlocks(pemText);
  if (blocks.length === 0) {
    // No PEM block: one key in another form node:crypto reads, as accepted before.
    try {
      return { keys: [ed25519(createPublicKey(pemText), source, 1)], skipped: [] };
    } catch (err) {
      if (err instanceof OtaError) throw err;
      throw new OtaError('E_KEY', `Expected one or more PEM public keys (-----BEGIN PUBLIC KEY-----, from fleetctl key export) in ${source} but found none (${(err as Error).message}); install the fleet's key there.`, { cause: err });
    }
  }
  const keys: KeyObject[] = [];
  const skipped: string[] = [];
  blocks.forEach((b, i) => {
    const what = `Key ${i + 1} of ${blocks.length} in ${source} (line ${b.line})`;
    if (b.text === undefined) {
      skipped.push(`${what} has no "-----END ${b.label}-----" line (a paste cut short); it is skipped: export it again with fleetctl key export.`);
    } else if (/PRIVATE KEY/.test(b.label)) {
      skipped.push(`${what} is a private key (${b.label}); it is refused: a private key must not sit on the boxes. Remove it and pin the public key (fleetctl key export); if it is the fleet's signing key, it has leaked: change the signing key (docs/rollouts.md).`);
    } else {
      try {
        keys.push(ed25519(createPublicKey(b.text), source, i + 1));
      } catch (err) {
        const reason = err instanceof OtaError ? `${err.message} It is skipped (line ${b.line}).` : `${what} is not a valid public key: ${(err as Error).message}; export it again with fleetctl key export.`;
        skipped.push(reason);
      }
    }
  });
  if (keys.length === 0) {
    throw new OtaError('E_KEY', skipped.length === 1 ? skipped[0]! : `No usable fleet key in ${source}: ${skipped.join(' ')}`);
  }
  return { keys, skipped };
}

/** The public keys in `pemText` (readTrustedKeys without what was skipped). */
export function parseTrustedKeys(pemText: string, source = 'the pinned key file'): KeyObject[] {
  return readTrustedKeys(pemText, source).keys;
}

/** The PEM blocks of `text` in order; `text` undefined for a block with no END line before the next BEGIN. */
function pemBlocks(text: string): Array<{ label: string; line: number; text: string | undefined }> {
  const begins = [...text.matchAll(PEM_BEGIN)];
  return begins.map((m, i) => {
    const from = m.index;
    const until = begins[i + 1]?.index ?? text.length;
    const endLine = `-----END ${m[1]}-----`;
    const end = text.indexOf(endLine, from);
    const line = text.slice(0, from).split('\n').length;
    return { label: m[1]!, line, text: end >= 0 && end < until ? text.slice(from, end + endLine.length) : undefined };
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
