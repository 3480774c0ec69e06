/**
 * Model registry: versions and their per-target artifacts, each with a signed manifest. Artifact
 * files are copied under `<dataDir>/artifacts/<name>/<version>/<target>/` and never change after
 * publishing: publishing the same bytes again is a no-op, different bytes under the same
 * name@version/target are refused (bump the version).
 */
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, createReadStream, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Db } from '../db/database.js';
import { giveTo, mkdirFor, ownerForRoot, type FileOwner } from '../db/file-owner.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';
import { manifestValidator, signManifest, type Manifest, type ModelTarget } from '../../../agent/src/protocol/manifest.js';
import { migrateOta } from './schema.js';
import { desiredPayloadBytes } from '../ota/desired-store.js';
import { MAX_PAYLOAD_BYTES } from '../../../agent/src/protocol/index.js';

export class RegistryError extends EdgeFleetError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export interface ArtifactRecord {
  name: string;
  version: string;
  target: ModelTarget;
  precision: Manifest['precision'];
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  signature: string;
  createdAtMs: number;
}

interface ArtifactRow {
  name: string; version: string; target: string; precision: string; path: string; sha256: string; size: number;
  manifest_json: string; signature: string; created_at_ms: number;
}

function toRecord(r: ArtifactRow): ArtifactRecord {
  return {
    name: r.name, version: r.version, target: r.target as ModelTarget, precision: r.precision as Manifest['precision'], path: r.path,
    sha256: r.sha256, size: r.size, manifest: JSON.parse(r.manifest_json) as Manifest, signature: r.signature, createdAtMs: r.created_at_ms,
  };
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

export type ManifestInput = Omit<Manifest, 'sha256' | 'size' | 'createdAt'> & { createdAt?: string };

export interface AddArtifactInput {
  /** Artifact file to copy in. */
  file: string;
  /**
   * The manifest, or a function that checks the staged copy (the very bytes that will be signed and
   * served; its name keeps the file's extension) and returns the manifest, or throws to refuse it.
   */
  manifest: ManifestInput | ((staged: string) => Promise<ManifestInput>);
}

export class ModelRegistry {
  constructor(private readonly db: Db, private readonly dataDir: string, private readonly now: () => number = Date.now) {
    migrateOta(db);
  }

  /**
   * Copies the artifact in, fills sha256/size, signs the manifest and records it. Idempotent for the
   * same bytes. The copy is what is hashed, then renamed into place: a source file rewritten while it
   * is published cannot leave served bytes that differ from the signed sha256 (every device would refuse them).
   * A manifest function checks that same copy, so what it vouches for is what is signed.
   *
   * The artifact is 0644 whatever the source's mode (a copy keeps it: a 0600 model made a 0600
   * artifact), and run as root (sudo fleetctl model publish) the directories and files made here are
   * the data dir's owner's: the server runs as its own user and must read what it serves (a device
   * got E_READ for every chunk until its wave timed out).
   */
  async addArtifact(input: AddArtifactInput, key: KeyObject): Promise<{ record: ArtifactRecord; created: boolean }> {
    const owner = ownerForRoot(this.dataDir);
    const staging = join(this.dataDir, 'artifacts', '.staging');
    mkdirFor(owner, staging);
    const staged = join(staging, `${randomUUID()}-${basename(input.file)}`);
    try {
      copyFileSync(input.file, staged);
      chmodSync(staged, 0o644);
      giveTo(owner, staged);
      const fd = openSync(staged, 'r+');
      try { fsyncSync(fd); } finally { closeSync(fd); }
      const manifest = typeof input.manifest === 'function' ? await input.manifest(staged) : input.manifest;
      return await this.addStaged(manifest, basename(input.file), staged, key, owner);
    } finally {
      rmSync(staged, { force: true });
    }
  }

  private async addStaged(m: ManifestInput, fileName: string, staged: string, key: KeyObject, owner: FileOwner | undefined): Promise<{ record: ArtifactRecord; created: boolean }> {
    const sha256 = await sha256File(staged);
    const existing = this.artifact(m.name, m.version, m.target);
    if (existing) {
      if (existing.sha256 === sha256) return { record: existing, created: false };
      throw new RegistryError('E_VERSION_EXISTS', `${m.name}@${m.version} (${m.target}) is already published with sha256 ${existing.sha256.slice(0, 12)}… but this file is ${sha256.slice(0, 12)}…; published versions never change, publish it as a new version.`);
    }
    const manifest: Manifest = { ...m, sha256, size: statSync(staged).size, createdAt: m.createdAt ?? new Date(this.now()).toISOString() };
    // Checked before anything is written: name and version become directories here (a version of "../x" would escape the data dir).
    const valid = manifestValidator.check(manifest);
    if (!valid.ok) {
      const i = valid.issues[0];
      throw new RegistryError('E_INPUT', `Manifest of ${m.name}@${m.version}: ${i?.path || '/'} expected ${i?.expected} but received ${i?.received}; versions and names are letters, digits and . _ + - (starting with a letter or digit).`);
    }
    const signature = signManifest(manifest, key);
    // The signed manifest travels in the device's desired message, which an agent drops over its size
    // limit: a version that could never reach a device is refused here, not at the rollout.
    const alone = desiredPayloadBytes({ detector: { version: m.version, manifest, signature, rollout: 'r'.repeat(64), healthWindowMs: 3_600_000 } });
    if (alone > MAX_PAYLOAD_BYTES.desired) {
      throw new RegistryError('E_INPUT', `The signed manifest of ${m.name}@${m.version} makes a desired message of ${alone} bytes, over the ${MAX_PAYLOAD_BYTES.desired} an agent accepts (${m.labels.length} labels, ${m.inputs.length + m.outputs.length} tensors); publish it with fewer or shorter labels.`);
    }
    const dir = join(this.dataDir, 'artifacts', m.name, m.version, m.target);
    mkdirFor(owner, dir);
    const dest = join(dir, fileName);
    renameSync(staged, dest);
    const at = this.now();
    this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO model_versions (name, version, created_at_ms) VALUES (?, ?, ?)').run(m.name, m.version, at);
      this.db.prepare('INSERT INTO model_artifacts (name, version, target, precision, path, sha256, size, manifest_json, signature, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(m.name, m.version, m.target, m.precision, dest, sha256, manifest.size, JSON.stringify(manifest), signature, at);
    })();
    return { record: this.artifact(m.name, m.version, m.target)!, created: true };
  }

  artifact(name: string, version: string, target: string): ArtifactRecord | undefined {
    const r = this.db.prepare('SELECT * FROM model_artifacts WHERE name = ? AND version = ? AND target = ?').get(name, version, target) as ArtifactRow | undefined;
    return r ? toRecord(r) : undefined;
  }

  artifacts(name: string, version: string): ArtifactRecord[] {
    return (this.db.prepare('SELECT * FROM model_artifacts WHERE name = ? AND version = ? ORDER BY target').all(name, version) as ArtifactRow[]).map(toRecord);
  }

  list(): { name: string; version: string; createdAtMs: number; targets: string[] }[] {
    const rows = this.db.prepare(`SELECT v.name, v.version, v.created_at_ms, group_concat(a.target) AS targets
      FROM model_versions v LEFT JOIN model_artifacts a ON a.name = v.name AND a.version = v.version
      GROUP BY v.name, v.version ORDER BY v.name, v.created_at_ms`).all() as { name: string; version: string; created_at_ms: number; targets: string | null }[];
    return rows.map((r) => ({ name: r.name, version: r.version, createdAtMs: r.created_at_ms, targets: r.targets ? r.targets.split(',') : [] }));
  }

  /** Reads `length` bytes at `offset` of an artifact file (chunk server). */
  readChunk(a: ArtifactRecord, offset: number, length: number): { data: Buffer; total: number } {
    const fd = openSync(a.path, 'r');
    try {
      const total = fstatSync(fd).size;
      const data = Buffer.alloc(Math.max(0, Math.min(length, total - offset)));
      const n = data.length > 0 ? readSync(fd, data, 0, data.length, offset) : 0;
      return { data: data.subarray(0, n), total };
    } finally {
      closeSync(fd);
    }
  }
}
