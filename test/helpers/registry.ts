import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { after } from 'node:test';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { tempDirForFile } from './temp-dir.js';

/**
 * A model registry for the whole test file: an in-memory database, its artifacts under `dir`/data,
 * and a fresh signing key; closed and removed after the file's last test. `dir` is free for staging.
 */
export function scratchRegistry(prefix: string) {
  const dir = tempDirForFile(prefix);
  const db = openDatabase(':memory:');
  after(() => { db.close(); });
  return { dir, registry: new ModelRegistry(db, join(dir, 'data')), key: generateKeyPairSync('ed25519').privateKey };
}
