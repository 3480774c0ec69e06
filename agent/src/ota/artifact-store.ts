/**
 * On-disk model versions of one model role (`detector`, ...) under `<stateDir>/models/<role>/`:
 *
 *   versions/<version>/model.onnx (.tflite, .mlmodel by target), model.meta.json, manifest.json, manifest.sig
 *   current.json            {version, previous}: the committed version, replaced atomically
 *   committed.json          the versions committed here (name, sha256), newest last: known good
 *   downloads/<key>.part    partial artifact, appended and fsync'd chunk by chunk (resume point)
 *   failed.json             artifacts (name@version) that were refused or rolled back, with the reason
 *   desired-rev.json        {rev, ts, version, epoch} of the newest desired state followed: older ones are ignored
 *
 * Version directories no longer needed are deleted (`prune`): each update would otherwise add its size
 * to the disk for good (an eMMC box with weekly updates fills up). A rollback to a deleted version
 * downloads it again.
 *
 * A version directory is built as `versions/.staging-<version>` and renamed into place only when
 * complete, and `current.json` changes only at commit, so a SIGKILL at any step leaves either the
 * old committed version or the new one, never a half-written one. On open, the committed version
 * is checked again (signature against the pinned keys, size + sha256 against its signed manifest) and
 * the previous one is used if it no longer verifies; `openCurrent` says which were passed over and why.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { artifactFileName, type Manifest } from '../protocol/manifest.js';
import { describeError } from '../util/errors.js';
import { fsyncDir, writeFileAtomic } from './fs-atomic.js';
import { LOCAL_FAULT_CODES, OtaError } from './errors.js';
import { readTrustedKeys, verifyWithTrustedKeys, type TrustedKeys } from './trusted-keys.js';

export interface InstalledVersion {
  version: string;
  modelPath: string;
  manifest: Manifest | undefined;
}

interface CurrentFile { version: string; previous?: string }

/** A committed version passed over at open, as it no longer verifies (signature, size, sha256) or is gone. */
export interface UnusableVersion { version: string; code: string; reason: string }

/** A version committed here: it passed its health window on this device (or is the factory model). */
export interface CommittedVersion { version: string; name?: string; sha256?: string }

/**
 * A desired state's revision (the server's per-device counter), its timestamp (server clock, epoch ms),
 * and the version it names for this role (absent in a file written by an older agent). `epoch`: the
 * server rev counter the rev belongs to (absent from servers and agents before epochs).
 */
export interface DesiredRev { rev: number; ts: number; version?: string; epoch?: string }

/** committed.json keeps this many versions (newest last); an older one is tried again like a new one. */
const COMMITTED_HISTORY = 32;

/** Committed versions whose directories `prune` keeps by default (config `ota.keepVersions`). */
export const DEFAULT_KEEP_VERSIONS = 3;

/** A version directory being deleted is first renamed to this prefix + version (removed by init if a crash interrupts it). */
const REMOVING_PREFIX = '.removing-';

export interface PruneOptions {
  /** How many of the newest committed versions keep their directories (besides current.json's two). */
  keepCommitted: number;
  /** Versions kept whatever they are (the running one). */
  keep?: Iterable<string | undefined>;
  /**
   * The version desired (being installed, or tried again: a stalled transfer, a trial cut by a stop or
   * a restart), with its model name when known: kept unless recorded as failed (a failed artifact is not
   * retried), or failed only for a load past the time limit (E_LOAD_TIMEOUT: tried again, without a
   * download, once the limit is raised). A version committed here is never held as failed.
   */
  desired?: { version: string; name?: string };
}

export function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

/** Size and sha256 of a file against its manifest; throws OtaError E_TRUNCATED / E_SHA256. */
export async function checkArtifact(path: string, manifest: Manifest): Promise<void> {
  const size = existsSync(path) ? statSync(path).size : 0;
  if (size < manifest.size) throw new OtaError('E_TRUNCATED', `Artifact ${manifest.name}@${manifest.version} is truncated: expected ${manifest.size} bytes but received ${size}; the transfer will be retried on the next desired state.`);
  if (size > manifest.size) throw new OtaError('E_SIZE', `Artifact ${manifest.name}@${manifest.version} has ${size} bytes but its manifest says ${manifest.size}; republish the model.`);
  const sha = await sha256OfFile(path);
  if (sha !== manifest.sha256) throw new OtaError('E_SHA256', `Artifact ${manifest.name}@${manifest.version} has sha256 ${sha} but its signed manifest says ${manifest.sha256}; the file was altered or corrupted.`);
}

export interface ArtifactStoreOptions {
  stateDir: string;
  role: string;
  /** The pinned fleet key(s): one PEM public key, or several one after the other (a key rotation; trusted-keys.ts). */
  publicKeyPem: string;
  /** Where the keys came from (config ota.publicKeyFile), named in errors. */
  keySource?: string;
  factory?: InstalledVersion;
  /**
   * The load limit that applies now (detector.loadTimeoutMs): a refusal for a load past a lower limit
   * (E_LOAD_TIMEOUT) holds nothing against the version once the limit is raised (see failureOf).
   */
  loadTimeoutMs?: number;
}

/**
 * A refused or rolled-back artifact in failed.json; `loadTimeoutMs`: the limit an E_LOAD_TIMEOUT refusal
 * was met under; `keys` and `signature`: for an E_SIGNATURE refusal, digests of the pinned key set it was
 * checked against and of the signature refused (see failureOf).
 */
export interface FailureEntry { code: string; reason: string; loadTimeoutMs?: number; keys?: string; signature?: string }

/** What a refusal is recorded with, beyond its code and reason (see FailureEntry). */
export interface FailureContext { loadTimeoutMs?: number; signature?: string }

export class ArtifactStore {
  readonly root: string;
  private keys: TrustedKeys | undefined;
  private keysDigest: string | undefined;

  constructor(private readonly opts: ArtifactStoreOptions) {
    this.root = join(opts.stateDir, 'models', opts.role);
  }

  /** The pinned public keys; throws OtaError E_KEY when the key text holds none that is usable. */
  trustedKeys(): KeyObject[] {
    this.keys ??= readTrustedKeys(this.opts.publicKeyPem, this.opts.keySource);
    return this.keys.keys;
  }

  /** The blocks of the key text that are no usable public key, one message each (see readTrustedKeys). */
  skippedKeys(): string[] {
    this.trustedKeys();
    return this.keys?.skipped ?? [];
  }

  /** The manifest, if its signature verifies against one of the pinned keys; throws E_SIGNATURE otherwise. */
  verify(manifest: unknown, signatureB64: string): Manifest {
    return verifyWithTrustedKeys(manifest, signatureB64, this.trustedKeys(), this.opts.keySource);
  }

  init(): void {
    try {
      mkdirSync(join(this.root, 'versions'), { recursive: true });
      mkdirSync(join(this.root, 'downloads'), { recursive: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EACCES' && e.code !== 'EPERM') throw err;
      throw new OtaError('E_STORE', `Cannot create the model store ${this.root}: ${e.message}. The agent's user must be able to write it: e.g. sudo chown -R edge-agent:edge-agent ${dirname(this.root)} (a model copied there with sudo leaves it owned by root).`, { cause: err });
    }
    // Leftovers of an install or a prune killed mid-way: never used, removed.
    for (const name of this.listDir(join(this.root, 'versions'))) {
      if (name.startsWith('.staging-') || name.startsWith(REMOVING_PREFIX)) rmSync(join(this.root, 'versions', name), { recursive: true, force: true });
    }
  }

  /** The versions with a directory in the store (complete ones: staging and removal leftovers are not listed). */
  installedVersions(): string[] {
    return this.listDir(join(this.root, 'versions')).filter((n) => !n.startsWith('.')).sort();
  }

  /**
   * Deletes the version directories no longer needed and returns their versions. Kept: current.json's
   * version and previous one (what runs, and what a rollback goes to), the `keepCommitted` newest versions
   * committed here (committed.json; the factory model, outside the store, does not count), `keep`, and
   * the desired version unless it failed. A directory is renamed out of its version's name before it is
   * deleted, so a crash never leaves a half-deleted version that looks installed. downloads/ is not
   * touched. Call it only while no install runs (it would not know the version being staged).
   */
  async prune(o: PruneOptions): Promise<string[]> {
    const cur = this.readCurrent();
    const factory = this.opts.factory?.version;
    const committed = [...new Set(this.readHistory().map((e) => e.version).reverse())].filter((v) => v !== factory);
    const keep = new Set<string>([cur?.version, cur?.previous, ...committed.slice(0, Math.max(0, o.keepCommitted)), ...(o.keep ?? [])].filter((v): v is string => v !== undefined));
    const d = o.desired;
    // As converge looks a failure up: by the desired manifest's name; a bare desired version (name unknown)
    // by the name in the installed manifest as well.
    const failed = d && (this.failureOf(d.name, d.version) ?? (d.name === undefined ? this.failureOf(this.installedName(d.version), d.version) : undefined));
    if (d && (this.committed(d.version) || !failed || failed.code === 'E_LOAD_TIMEOUT')) keep.add(d.version);
    const removed: string[] = [];
    for (const v of this.installedVersions()) {
      if (keep.has(v) || this.holdsFactory(v)) continue;
      const dir = this.versionDir(v);
      const doomed = join(this.root, 'versions', `${REMOVING_PREFIX}${v}`);
      await rm(doomed, { recursive: true, force: true });
      renameSync(dir, doomed);
      fsyncDir(join(this.root, 'versions'));
      await rm(doomed, { recursive: true, force: true });
      removed.push(v);
    }
    return removed;
  }

  /**
   * Deletes the partial downloads (downloads/*.part) other than `keepPath`. Call it only while no
   * download runs: a partial file is the resume point of the artifact being fetched.
   */
  async prunePartials(keepPath?: string): Promise<string[]> {
    const removed: string[] = [];
    for (const name of this.listDir(join(this.root, 'downloads'))) {
      const p = join(this.root, 'downloads', name);
      if (!name.endsWith('.part') || p === keepPath) continue;
      await rm(p, { force: true });
      removed.push(name);
    }
    return removed;
  }

  partPath(manifest: Manifest): string {
    return join(this.root, 'downloads', `${manifest.name}@${manifest.version}-${manifest.target}.part`);
  }

  versionDir(version: string): string {
    return join(this.root, 'versions', version);
  }

  /** The committed version, verified; the previous committed one or the factory model when it is damaged. */
  async current(): Promise<InstalledVersion | undefined> {
    return (await this.openCurrent()).installed;
  }

  /**
   * The committed version, verified, or else the previous committed one, or else the factory model;
   * `unusable`: the committed versions passed over, with why (a signature no pinned key verifies, after
   * a key change; damaged or missing files).
   */
  async openCurrent(): Promise<{ installed: InstalledVersion | undefined; unusable: UnusableVersion[] }> {
    const cur = this.readCurrent();
    const unusable: UnusableVersion[] = [];
    for (const v of [cur?.version, cur?.previous]) {
      if (!v) continue;
      if (v === this.opts.factory?.version) return { installed: this.opts.factory, unusable };
      try {
        return { installed: await this.load(v), unusable };
      } catch (err) {
        const e = describeError(err);
        unusable.push({ version: v, code: e.code, reason: e.message });
      }
    }
    return { installed: this.opts.factory, unusable };
  }

  previousVersion(): string | undefined {
    return this.readCurrent()?.previous;
  }

  /** A locally installed version, re-verified against its stored signed manifest. */
  async load(version: string): Promise<InstalledVersion> {
    if (version === this.opts.factory?.version) return this.opts.factory;
    const dir = this.versionDir(version);
    if (!existsSync(join(dir, 'manifest.json'))) throw new OtaError('E_NOT_INSTALLED', `Version ${version} is not installed in ${this.root}.`);
    const manifest = this.verify(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), readFileSync(join(dir, 'manifest.sig'), 'utf8'));
    let modelPath = join(dir, artifactFileName(manifest.target));
    // Versions staged before artifacts were named by target were all model.onnx.
    if (!existsSync(modelPath) && existsSync(join(dir, 'model.onnx'))) modelPath = join(dir, 'model.onnx');
    await checkArtifact(modelPath, manifest);
    return { version, modelPath, manifest };
  }

  /** Moves a verified download into `versions/<version>` (staging dir + fsync + rename). */
  stage(opts: { partPath: string; manifest: Manifest; signature: string; meta: unknown }): InstalledVersion {
    const { manifest } = opts;
    const final = this.versionDir(manifest.version);
    if (existsSync(final)) rmSync(final, { recursive: true, force: true });
    const staging = join(this.root, 'versions', `.staging-${manifest.version}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    // Same file system (both under root): a rename, not a copy; the data was fsync'd chunk by chunk.
    const file = artifactFileName(manifest.target);
    renameSync(opts.partPath, join(staging, file));
    try {
      this.fsyncFile(join(staging, file));
      writeFileAtomic(join(staging, 'model.meta.json'), `${JSON.stringify(opts.meta, null, 2)}\n`);
      writeFileAtomic(join(staging, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
      writeFileAtomic(join(staging, 'manifest.sig'), opts.signature);
      renameSync(staging, final);
    } catch (err) {
      // A disk that filled up here (ENOSPC): the verified download goes back to its partial file, where
      // the retry finds it complete. Left in the staging directory (removed only at start), it held its
      // space while every retry downloaded the artifact again from byte 0, and never fitted.
      const staged = join(staging, file);
      try {
        if (existsSync(staged)) renameSync(staged, opts.partPath);
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
      throw err;
    }
    fsyncDir(join(this.root, 'versions'));
    fsyncDir(join(this.root, 'downloads'));
    return { version: manifest.version, modelPath: join(final, file), manifest };
  }

  /**
   * Makes `version` the committed one (atomic replace of current.json) and adds it to the versions
   * committed here. current.json is written first: a crash in between loses only the history entry,
   * and `committed()` still finds the version in current.json. Throws only when current.json could not
   * be written (nothing changed then); a history that could not be written (a disk filling up between
   * the two) is returned, as a crash in between would lose it.
   */
  commit(version: string, previous: string | undefined, manifest?: Manifest): { historyError?: unknown } {
    const cur: CurrentFile = { version, ...(previous && previous !== version ? { previous } : {}) };
    writeFileAtomic(join(this.root, 'current.json'), `${JSON.stringify(cur)}\n`);
    const entry: CommittedVersion = { version, ...(manifest ? { name: manifest.name, sha256: manifest.sha256 } : {}) };
    try {
      const history = [...this.readHistory().filter((e) => e.version !== version), entry].slice(-COMMITTED_HISTORY);
      writeFileAtomic(join(this.root, 'committed.json'), `${JSON.stringify(history)}\n`);
    } catch (err) {
      return { historyError: err };
    }
    return {};
  }

  /**
   * `version` as committed here before, if it was: from committed.json, or current.json's committed
   * and previous versions (a store written before committed.json existed; name and sha256 unknown).
   */
  committed(version: string): CommittedVersion | undefined {
    const hit = this.readHistory().find((e) => e.version === version);
    if (hit) return hit;
    const cur = this.readCurrent();
    return cur && (cur.version === version || cur.previous === version) ? { version } : undefined;
  }

  /** Refused and rolled-back artifacts, keyed `name@version` (or a bare version, in a file written by an older agent). */
  failures(): Record<string, FailureEntry> {
    const p = join(this.root, 'failed.json');
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) as Record<string, FailureEntry> : {};
  }

  /**
   * The recorded failure of model `name` at `version`, if any. Keyed by name as well as version: a
   * refused `other@1.0.0` (a bad signature, say) says nothing against a later `standin@1.0.0`. An entry
   * keyed by version alone, from an older agent, still holds for every name. An entry for a fault of this
   * box (a full disk: ENOSPC...), which older agents recorded as a refusal, holds nothing against the
   * version: it is tried again. Nor does a load past the time limit (E_LOAD_TIMEOUT) met under a lower
   * limit than the one that applies now, or under one not recorded (older agents): the refusal says to
   * raise detector.loadTimeoutMs and restart, and used to hold the version for good all the same. Met
   * under the limit that applies, it holds: the same load would only time out again. Likewise a bad
   * signature (E_SIGNATURE) holds only against the same signature under the same pinned keys: once the
   * key file is put right (the missing key pinned, the agent restarted, as docs/rollouts.md says), or
   * the desired state brings another signature, the version is checked again. It used to stay refused
   * for good, so a key file fixed on the box still needed a new version published for the fleet. The
   * check is cheap: the manifest is verified before anything is downloaded. An entry recorded without
   * the digests (older agents) is checked again once.
   */
  failureOf(name: string | undefined, version: string, signature?: string): FailureEntry | undefined {
    const f = this.failures();
    return [f[failureKey(name, version)], f[version]].find((e) => e !== undefined && !LOCAL_FAULT_CODES.has(e.code) && !this.loadLimitRaised(e) && !this.signatureCheckChanged(e, signature));
  }

  markFailed(name: string | undefined, version: string, code: string, reason: string, extra: FailureContext = {}): void {
    const f = this.failures();
    const entry: FailureEntry = { code, reason };
    if (extra.loadTimeoutMs !== undefined) entry.loadTimeoutMs = extra.loadTimeoutMs;
    if (code === 'E_SIGNATURE') {
      entry.keys = this.keySetDigest();
      if (extra.signature !== undefined) entry.signature = digest(extra.signature);
    }
    f[failureKey(name, version)] = entry;
    writeFileAtomic(join(this.root, 'failed.json'), `${JSON.stringify(f)}\n`);
  }

  /** `rev`, `ts` and `epoch` of the newest desired state this role followed (desired-rev.json), if any. */
  desiredRev(): DesiredRev | undefined {
    const p = join(this.root, 'desired-rev.json');
    if (!existsSync(p)) return undefined;
    const d = JSON.parse(readFileSync(p, 'utf8')) as Partial<DesiredRev>;
    if (!Number.isInteger(d.rev) || !Number.isFinite(d.ts)) return undefined;
    return { rev: d.rev as number, ts: d.ts as number, ...(typeof d.version === 'string' ? { version: d.version } : {}), ...(typeof d.epoch === 'string' ? { epoch: d.epoch } : {}) };
  }

  setDesiredRev(d: DesiredRev): void {
    writeFileAtomic(join(this.root, 'desired-rev.json'), `${JSON.stringify({ rev: d.rev, ts: d.ts, ...(d.version !== undefined ? { version: d.version } : {}), ...(d.epoch !== undefined ? { epoch: d.epoch } : {}) })}\n`);
  }

  /** An E_SIGNATURE refusal met under other pinned keys, or of another signature than `signature` (when given), or recorded without either digest. */
  private signatureCheckChanged(e: FailureEntry, signature: string | undefined): boolean {
    if (e.code !== 'E_SIGNATURE') return false;
    if (e.keys === undefined) return true;
    return e.keys !== this.keySetDigest() || (signature !== undefined && e.signature !== undefined && e.signature !== digest(signature));
  }

  /**
   * Forgets a bad-signature refusal of `name@version` once a manifest for it verified: with the refusal
   * still in failed.json, the prune that follows a stalled transfer or a restart (which knows no
   * signature) took the version for refused and deleted its partial download or staged files.
   */
  signatureVerified(name: string, version: string): void {
    const f = this.failures();
    const key = [failureKey(name, version), version].find((k) => f[k]?.code === 'E_SIGNATURE');
    if (key === undefined) return;
    delete f[key];
    writeFileAtomic(join(this.root, 'failed.json'), `${JSON.stringify(f)}\n`);
  }

  /** A digest of the set of pinned public keys (their SPKI DER bytes), whatever their order or repeats in the file. */
  private keySetDigest(): string {
    if (this.keysDigest !== undefined) return this.keysDigest;
    const ders = new Set(this.trustedKeys().map((k) => (k.export({ type: 'spki', format: 'der' }) as Buffer).toString('hex')));
    return (this.keysDigest = digest([...ders].sort().join(',')));
  }

  private loadLimitRaised(e: FailureEntry): boolean {
    if (e.code !== 'E_LOAD_TIMEOUT' || this.opts.loadTimeoutMs === undefined) return false;
    return e.loadTimeoutMs === undefined || e.loadTimeoutMs < this.opts.loadTimeoutMs;
  }

  /** The model name in the stored manifest of `version`, if it is installed and readable. */
  private installedName(version: string): string | undefined {
    const p = join(this.versionDir(version), 'manifest.json');
    if (!existsSync(p)) return undefined;
    try {
      const name = (JSON.parse(readFileSync(p, 'utf8')) as { name?: unknown }).name;
      return typeof name === 'string' ? name : undefined;
    } catch (err) {
      if (err instanceof SyntaxError) return undefined; // damaged: its load fails too
      throw err;
    }
  }

  /** Whether the factory model (config detector.model) lies inside the version directory (a config pointing into the store). */
  private holdsFactory(version: string): boolean {
    const path = this.opts.factory?.modelPath;
    if (!path) return false;
    const rel = relative(resolve(this.versionDir(version)), resolve(path));
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  }

  private readHistory(): CommittedVersion[] {
    const p = join(this.root, 'committed.json');
    if (!existsSync(p)) return [];
    const h = JSON.parse(readFileSync(p, 'utf8')) as unknown;
    return Array.isArray(h) ? h as CommittedVersion[] : [];
  }

  private readCurrent(): CurrentFile | undefined {
    const p = join(this.root, 'current.json');
    if (!existsSync(p)) return undefined;
    return JSON.parse(readFileSync(p, 'utf8')) as CurrentFile;
  }

  private fsyncFile(path: string): void {
    // fsync through a read-only descriptor flushes the file's data and metadata (fsync(2)).
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private listDir(dir: string): string[] {
    return existsSync(dir) ? readdirSync(dir) : [];
  }
}

/** The first 32 hex digits of the SHA-256 of `text`: enough to tell two values apart, not to keep them. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** `name@version`; a desired entry without a manifest (name unknown) is keyed `?@version`. */
export function failureKey(name: string | undefined, version: string): string {
  return `${name ?? '?'}@${version}`;
}
