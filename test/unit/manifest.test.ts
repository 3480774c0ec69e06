/** Manifest canonical JSON, Ed25519 sign/verify, and the server key file (created 0600, reloaded, refused when readable by others). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, signManifest, verifyManifest, SignatureError, type Manifest } from '../../agent/src/protocol/manifest.js';
import { loadOrCreateServerKey, keyPathOf } from '../../fleet-server/src/keys/server-key.js';

const manifest: Manifest = {
  name: 'standin', version: '1.2.3', target: 'onnx-cpu', precision: 'fp32', sha256: 'a'.repeat(64), size: 342,
  inputs: [{ name: 'images', dims: [1, 16, 16, 3], type: 'float32' }], outputs: [{ name: 'detections', dims: [1, 4, 6] }],
  preprocess: { width: 16, height: 16, layout: 'NHWC' }, decoder: { type: 'centernet', scoreThreshold: 0.3 }, labels: ['person'],
  metrics: { mapDrop: 0.4 }, createdAt: '2026-01-01T00:00:00.000Z',
};

test('canonical JSON sorts keys at every level and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  const reordered = JSON.parse(JSON.stringify({ ...manifest, name: manifest.name })) as Manifest;
  assert.equal(canonicalJson(reordered), canonicalJson(Object.fromEntries(Object.entries(manifest).reverse())));
});

test('a signed manifest verifies; any change, another key or a bad shape is refused with a reason', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const sig = signManifest(manifest, privateKey);
  assert.deepEqual(verifyManifest(structuredClone(manifest), sig, pub), manifest);
  assert.throws(() => verifyManifest({ ...manifest, sha256: 'b'.repeat(64) }, sig, pub), (e: unknown) => e instanceof SignatureError && /does not verify against the pinned fleet key/.test(e.message));
  assert.throws(() => verifyManifest({ ...manifest, labels: ['person', 'car'] }, sig, pub), SignatureError);
  const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
  assert.throws(() => verifyManifest(manifest, sig, other), /does not verify/);
  assert.throws(() => verifyManifest({ ...manifest, target: 'gpu' }, sig, pub), /manifest schema: \/target/);
  assert.throws(() => verifyManifest(manifest, 'AAAA', pub), SignatureError);
});

test('the server key is created once with mode 0600, reloaded unchanged, and refused when others can read it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-key-'));
  try {
    const a = loadOrCreateServerKey(dir);
    assert.equal(a.created, true);
    assert.equal(statSync(keyPathOf(dir)).mode & 0o777, 0o600);
    assert.match(a.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
    const b = loadOrCreateServerKey(dir);
    assert.equal(b.created, false);
    assert.equal(b.publicKeyPem, a.publicKeyPem);
    const sig = signManifest(manifest, b.privateKey);
    assert.equal(verifyManifest(manifest, sig, a.publicKeyPem).version, '1.2.3');
    chmodSync(keyPathOf(dir), 0o644);
    assert.throws(() => loadOrCreateServerKey(dir), /mode 0600.*0644.*chmod 600/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
