/**
 * The registry signs the sha256 of the bytes it serves. It hashed the source file, then copied it:
 * a source rewritten meanwhile (an export still writing it, a second publish) left a served file that
 * no longer matched its signed sha256, and every device refused it. Now the copy is hashed and renamed
 * into place.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Db } from '../../fleet-server/src/db/database.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-registry-copy-'));
const dbs: Db[] = [];
after(() => { for (const db of dbs) db.close(); rmSync(dir, { recursive: true, force: true }); });
function registryIn(dataDir: string): ModelRegistry {
  const db = openDatabase(':memory:');
  dbs.push(db);
  return new ModelRegistry(db, dataDir);
}
/** Every file under the data dir. */
const filesUnder = (d: string): string[] => readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
const key = generateKeyPairSync('ed25519').privateKey;
const manifest = (version: string) => ({ name: 'm', version, target: 'onnx-cpu' as const, precision: 'fp32' as const, inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: ['x'], metrics: {} });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('a source rewritten while it is published: the signed sha256 and size are those of the served file', async () => {
  const registry = registryIn(join(dir, 'data'));
  const src = join(dir, 'model.onnx');
  const old = Buffer.alloc(32 << 20, 1);
  writeFileSync(src, old);
  let done = false;
  const publishing = registry.addArtifact({ file: src, manifest: manifest('1.0.0') }, key).finally(() => { done = true; });
  // Rewritten again and again (shorter, other bytes) while the publish is under way.
  for (let k = 0; !done; k++) {
    await new Promise((r) => setTimeout(r, 1));
    writeFileSync(src, Buffer.alloc((1 + (k % 3)) << 19, 2 + (k % 2)));
  }
  const { record } = await publishing;
  const served = readFileSync(record.path);
  assert.equal(record.sha256, sha(served));
  assert.equal(record.manifest.sha256, sha(served));
  assert.equal(record.manifest.size, served.length);
  assert.equal(record.size, served.length);
  assert.deepEqual(filesUnder(join(dir, 'data')), [record.path], 'no other copy left in the data dir');
});

test('a refused publish leaves no copy behind', async () => {
  const registry = registryIn(join(dir, 'data2'));
  const src = join(dir, 'small.onnx');
  writeFileSync(src, 'a');
  await registry.addArtifact({ file: src, manifest: manifest('1.0.0') }, key);
  writeFileSync(src, 'b');
  await assert.rejects(registry.addArtifact({ file: src, manifest: manifest('1.0.0') }, key), /already published/);
  await assert.rejects(registry.addArtifact({ file: src, manifest: manifest('../../escape') }, key), /\/version expected/);
  const published = registry.artifact('m', '1.0.0', 'onnx-cpu')!.path;
  assert.deepEqual(filesUnder(join(dir, 'data2')), [published]);
  assert.ok(!existsSync(join(dir, 'escape')));
  assert.equal(readFileSync(published, 'utf8'), 'a');
});
