/**
 * The fleet server's Ed25519 signing key. Created on first start as PKCS#8 PEM with mode 0600 in
 * `<dataDir>/keys/signing-key.pem` (written to a temp file first, fsync'd, renamed, so a crash never
 * leaves half a key); the public key (SPKI PEM) is what agents pin (`fleetctl key export`).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { giveTo, mkdirFor, ownerForRoot } from '../db/file-owner.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';

export class KeyError extends EdgeFleetError {
  constructor(message: string) {
    super('E_KEY', message);
  }
}

export interface ServerKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  path: string;
  created: boolean;
}

export function keyPathOf(dataDir: string): string {
  return join(dataDir, 'keys', 'signing-key.pem');
}

/**
 * Loads the key, creating it on first use unless `create` is false (exporting a key must never mint
 * one in a mistyped data dir). Refuses a key file readable by group or others. Created as root
 * (sudo fleetctl model publish --create), `keys/` and the key are the data dir's owner's: a root-made
 * 0700 directory hid the key from the server, which then failed making a new one in it.
 */
export function loadOrCreateServerKey(dataDir: string, opts: { create?: boolean } = {}): ServerKey {
  const path = keyPathOf(dataDir);
  let created = false;
  if (!existsSync(path) && opts.create === false) {
    throw new KeyError(`No signing key at ${path}: is ${dataDir} the fleet server's data dir (--data-dir, or dataDir in --config)? The server creates its key at first start.`);
  }
  if (!existsSync(path)) {
    const owner = ownerForRoot(dataDir);
    mkdirFor(owner, join(dataDir, 'keys'), 0o700);
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    giveTo(owner, tmp);
    renameSync(tmp, path);
    created = true;
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new KeyError(`Expected the signing key ${path} to be private (mode 0600) but it is ${mode.toString(8).padStart(4, '0')}; run chmod 600 ${path}.`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KeyError(`Could not read the signing key ${path}: ${(err as Error).message}. Restore it from backup; a new key would make every agent refuse new models.`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new KeyError(`Expected an Ed25519 key in ${path} but found ${privateKey.asymmetricKeyType}.`);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  if (created) chmodSync(path, 0o600);
  return { privateKey, publicKeyPem, path, created };
}
