/**
 * `model publish DIR` hashed DIR/model.onnx against gate.json, loaded it in onnxruntime (slow), read
 * its tensors, and only then did the registry copy the file again and sign the hash of that copy. A
 * build renamed into DIR meanwhile (an export --out writing the next build) was signed as int8 under
 * the earlier build's gate decision and metrics, its tensors and dims never checked. Now the artifact
 * is copied into the registry's staging first, and the gate checksum, the onnxruntime load, the tensors
 * and the dims are all checked on that copy, which is then signed and renamed into place.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

const SRC = 'assets/models/blazeface-back';
const skip = existsSync(join(SRC, 'model.onnx')) ? false : `${SRC} missing (run ./scripts/setup.sh)`;
const tmp = mkdtempSync(join(tmpdir(), 'ef-publish-gated-'));
const db = openDatabase(':memory:');
const create = ort.InferenceSession.create;
after(() => { ort.InferenceSession.create = create; db.close(); rmSync(tmp, { recursive: true, force: true }); });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('a build renamed into DIR while publish checks the gated one: the gated bytes are what is signed and served', { skip }, async () => {
  const dir = join(tmp, 'DIR');
  mkdirSync(dir);
  copyFileSync(join(SRC, 'model.onnx'), join(dir, 'model.onnx'));
  copyFileSync(join(SRC, 'model.meta.json'), join(dir, 'model.meta.json'));
  const gated = readFileSync(join(dir, 'model.onnx'));
  writeFileSync(join(dir, 'gate.json'), JSON.stringify({
    precision: 'int8', artifact: { file: 'model.onnx', sha256: sha(gated), size: statSync(join(dir, 'model.onnx')).size },
    decision: { pass: true, reason: 'ok', mapDrop: 0.2, f1Drop: 0.5 },
  }));
  // Build B, never gated: one weight changed.
  const m = decodeModel(new Uint8Array(gated));
  const w = [...m.graph.initializers.values()].find((t) => t.dims.length === 4);
  assert.ok(w?.data);
  w.data[3] ^= 0x01;
  const other = encodeModel(m);
  writeFileSync(join(tmp, 'B.onnx'), other);
  // A concurrent writer: B lands in DIR (atomic rename) while publish waits on onnxruntime.
  let swapped = false;
  ort.InferenceSession.create = (async (...args: Parameters<typeof create>) => {
    if (!swapped) { renameSync(join(tmp, 'B.onnx'), join(dir, 'model.onnx')); swapped = true; }
    return create.apply(ort.InferenceSession, args);
  }) as typeof create;
  try {
    const { record } = await publishModelDir(new ModelRegistry(db, join(tmp, 'data')), generateKeyPairSync('ed25519').privateKey, { dir, version: '9.9.9' });
    assert.ok(swapped, 'the onnxruntime load check ran');
    assert.deepEqual(readFileSync(join(dir, 'model.onnx')), Buffer.from(other), 'DIR now holds build B');
    assert.equal(record.manifest.precision, 'int8');
    assert.equal(record.manifest.sha256, sha(gated), 'the signed sha256 is the gated build\'s');
    assert.equal(record.manifest.size, gated.length);
    assert.deepEqual(record.manifest.metrics, { mapDrop: 0.2, f1Drop: 0.5 });
    assert.ok(readFileSync(record.path).equals(gated), 'the served file is the gated build');
  } finally {
    ort.InferenceSession.create = create;
  }
});
