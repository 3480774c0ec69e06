/**
 * The agent's OTA installer for one model role. It converges on the server's desired state:
 *
 *   download (MQTT chunks or an HTTP(S) URL, with resume) → verify (signature, target, size, sha256) → stage (version dir,
 *   fsync, rename) → load (new worker) → self-test (warm-up + frames) → swap (between two frames)
 *   → health window → commit (current.json) or automatic rollback, reported with the reason.
 *
 * Refused and rolled-back artifacts (name@version) are remembered (failed.json) so the agent does not retry a bad
 * model in a loop; a transient failure (stalled transfer, a full disk) is retried on the next desired message,
 * reconnect, or after `retryDelayMs` (doubling per failure in a row after a full disk, up to DISK_RETRY_MAX_MS). Only one install runs at a time; a newer desired state waits for it.
 * Going back to a version that proved itself here (committed before, or the factory model) skips the
 * health window and is never remembered as failed. Version directories no longer needed are deleted at
 * start-up and after each desired state is handled (see `pruneStore`); going back to a deleted one
 * downloads it again.
 */
import type { RgbImage } from '../types.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { compileSchema } from '../util/schema.js';
import { describeError } from '../util/errors.js';
import { deviceRoot, type DesiredPayload, type ReportedPayload } from '../protocol/index.js';
import type { Manifest, ModelTarget } from '../protocol/manifest.js';
import { DesiredModelSchema, otaTopics, type DesiredModel, type OtaPhase, type OtaReport } from '../protocol/ota.js';
import { ArtifactStore, checkArtifact, DEFAULT_KEEP_VERSIONS, type DesiredRev, type InstalledVersion } from './artifact-store.js';
import { ChunkDownloader } from './chunk-downloader.js';
import { downloadHttp } from './http-downloader.js';
import { HealthWindow, DEFAULT_HEALTH_GATE, type HealthGate } from './health-window.js';
import { SwappableDetector, type DetectorLike } from './swappable-detector.js';
import { isLocalFault, OtaError } from './errors.js';
import { loadModelMetadata } from '../model/metadata.js';
import { DEFAULT_LOAD_TIMEOUT_MS } from '../config/schema.js';
import { existsSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

export const INSTALL_STEPS = ['download', 'verify', 'stage', 'load', 'self-test', 'swap', 'health', 'commit', 'committed'] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** What the manager needs from AgentLink (kept narrow so tests can drive it). */
export interface OtaLink {
  readonly deviceId: string;
  on(event: 'desired', fn: (d: DesiredPayload) => void): unknown;
  on(event: 'ota', fn: (m: { topic: string; payload: Buffer }) => void): unknown;
  on(event: 'connect', fn: () => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
  publishRaw(topic: string, payload: Buffer | string, qos?: 0 | 1): boolean;
  publishReported(r: ReportedPayload): boolean;
}

export interface OtaManagerOptions {
  link: OtaLink;
  stateDir: string;
  role?: string;
  /**
   * The pinned fleet key(s): one PEM public key, or several one after the other while the fleet changes
   * its signing key (trusted-keys.ts); a manifest signed by any of them is accepted.
   */
  publicKeyPem: string;
  /** Where publicKeyPem was read from (config ota.publicKeyFile), named in errors. */
  publicKeyFile?: string;
  target?: ModelTarget;
  /**
   * The model the agent ships with (config detector.model), used until an OTA version is committed.
   * `name`: its model name (read from its metadata file when absent), to tell it from another model
   * published with the same version.
   */
  factory: { modelPath: string; version: string; name?: string };
  /**
   * Loads a model (and runs its warm-up). `signal`: the load is given up (the install's time limit, a
   * stop): reject, and stop what the load started (its worker).
   */
  openDetector: (modelPath: string, opts?: { signal?: AbortSignal }) => Promise<DetectorLike>;
  /**
   * A version installed over the air that has not loaded (openDetector, warm-up included) within this
   * time is refused with E_LOAD_TIMEOUT and its load given up (config detector.loadTimeoutMs; default
   * 35 min, over the TensorRT engine build's own 30). The refusal is remembered with the limit: with a
   * higher limit (after a restart) the version is tried again. The load at start has no limit here:
   * the service manager's start timeout covers it.
   */
  loadTimeoutMs?: number;
  gate?: Partial<HealthGate>;
  /**
   * Committed versions whose directories are kept (newest first, config ota.keepVersions; default 3),
   * besides the running one and the previous one; older ones are deleted.
   */
  keepVersions?: number;
  /** Self-test input when no frame has been seen yet. */
  selfTestImage?: RgbImage;
  requestTimeoutMs?: number;
  maxRetries?: number;
  /** Test hook: called at the start of every install step (the SIGKILL test kills the process here). */
  atStep?: (step: InstallStep, version: string) => void | Promise<void>;
  /** Download progress (bytes on disk of the artifact being fetched). */
  onProgress?: (bytes: number, total: number) => void;
  /**
   * After a transient failure (stalled transfer, the server's refusal of the moment), try again after this
   * long (default 10 s). After a fault of this box (E_DISK: a full disk) the wait doubles with each
   * failure in a row, up to DISK_RETRY_MAX_MS, and starts over at a success or a new desired state.
   */
  retryDelayMs?: number;
  /**
   * Bytes free for the agent in the file system of `dir` (default: statfs, the blocks available to an
   * unprivileged user). Checked before a download asks for the rest of an artifact.
   */
  freeBytes?: (dir: string) => number;
  /** Wall clock (epoch ms) for report timestamps. */
  now?: () => number;
  /**
   * Clock for durations (the health window and its hard stop), in ms: monotonic, so that an NTP step
   * of the wall clock neither stretches the window (a step back of 1 h held the device in 'health'
   * past the rollout's timeout) nor cuts it short. Default performance.now.
   */
  monotonicNow?: () => number;
  logger?: Logger;
}

const desiredModelValidator = compileSchema(DesiredModelSchema);

/**
 * Outcomes that say nothing against the version, so it is not remembered as failed and is tried again:
 * a stalled transfer, a stop, the server's refusals of the moment (the desired state moved on during
 * the download, e.g. a rollback: E_NOT_DESIRED; it could not read the file: E_READ), and a fault of this
 * box met on the way (E_DISK: a full disk, see diskFault).
 */
const TRANSIENT = new Set(['E_TRANSFER_STALLED', 'E_ABORTED', 'E_NOT_DESIRED', 'E_READ', 'E_DISK']);

/**
 * A desired message with a lower `rev` than the one followed is stale (a broker restored from its
 * persistence file re-delivered an older retained state: the device went back to the model before),
 * unless it is stamped this much later than the one followed. The server's rev only grows per device,
 * but a server whose database was reset starts again at 1; its messages are stamped when it sends them,
 * after the one followed, while a stale one was sent before it. The margin covers a server clock
 * stepped back between the two (an NTP correction); a reset server is followed from its first message
 * sent that long after the last one of the old server (a device ignores it until then and keeps its
 * model: the safe side). A device without a persisted rev (new, or upgraded from an agent that kept
 * none) follows whatever comes.
 *
 * Servers now stamp `epoch`, the identity of their rev counter (a new one per database), and revs are
 * compared within one epoch only: a message of another epoch is followed when it is stamped after the
 * one followed, whatever its rev (a reset server at once; a stale retained message of the old server,
 * sent before, still not). This margin remains for the same epoch (a server restored from an older
 * backup: fleet-server/src/ota/desired-store.ts) and for a message or a followed state without one
 * (a server, or the agent's desired-rev.json, from before epochs).
 */
export const DESIRED_RESET_MIN_GAP_MS = 10 * 60_000;

/**
 * The longest wait between two tries of an install that failed for a fault of this box (E_DISK). The
 * retries of a full disk came every retryDelayMs without end, and each downloaded into it again.
 */
export const DISK_RETRY_MAX_MS = 10 * 60_000;

/**
 * Space a download leaves free beyond the artifact: the version's metadata, manifest and signature
 * written at the stage step, current.json and committed.json at commit (a few blocks each).
 */
export const STAGE_HEADROOM_BYTES = 64 * 1024;

export class OtaManager {
  readonly role: string;
  readonly store: ArtifactStore;
  readonly health = new HealthWindow();
  detector!: SwappableDetector;
  private readonly downloader: ChunkDownloader;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly monotonicNow: () => number;
  private readonly gate: HealthGate;
  private running: InstalledVersion | undefined;
  private factoryName: string | undefined;
  private lastReport: OtaReport | undefined;
  /** Figures of the last failed health window, attached to the rolled-back report. */
  private lastHealth: Record<string, number> | undefined;
  private desired: { rev: number; entry: DesiredModel } | undefined;
  /** The newest desired state followed (persisted in desired-rev.json). */
  private desiredRev: DesiredRev | undefined;
  /** The last stale message logged (epoch and rev), so that a re-delivered one is logged once. */
  private ignoredRev: string | undefined;
  private installing: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Installs failed in a row for a fault of this box (E_DISK): the next retry waits retryDelayMs × 2^this. */
  private diskFailures = 0;
  private started = false;
  private abort = new AbortController();
  /** Installs by outcome, for tests and metrics. */
  readonly counts = { committed: 0, rolledBack: 0, refused: 0, failed: 0 };
  private readonly onDesired = (d: DesiredPayload) => this.handleDesired(d);
  private readonly onOta = (m: { topic: string; payload: Buffer }) => {
    if (m.topic === otaTopics.chunk(deviceRoot(this.opts.link.deviceId))) this.downloader.onChunkMessage(m.payload);
  };
  private readonly onConnect = () => {
    if (this.lastReport) this.report(this.lastReport);
    this.kick();
  };

  constructor(private readonly opts: OtaManagerOptions) {
    this.role = opts.role ?? 'detector';
    this.log = opts.logger ?? moduleLogger('ota');
    this.now = opts.now ?? Date.now;
    this.monotonicNow = opts.monotonicNow ?? (() => performance.now());
    this.gate = { ...DEFAULT_HEALTH_GATE, ...opts.gate };
    this.store = new ArtifactStore({
      stateDir: opts.stateDir, role: this.role, publicKeyPem: opts.publicKeyPem, keySource: opts.publicKeyFile,
      factory: { version: opts.factory.version, modelPath: opts.factory.modelPath, manifest: undefined },
      loadTimeoutMs: this.loadTimeoutMs,
    });
    const root = deviceRoot(opts.link.deviceId);
    this.downloader = new ChunkDownloader({
      send: (req) => opts.link.publishRaw(otaTopics.req(root), JSON.stringify(req), 1),
      requestTimeoutMs: opts.requestTimeoutMs, maxRetries: opts.maxRetries, onProgress: opts.onProgress,
    });
  }

  private get retryDelayMs(): number {
    return this.opts.retryDelayMs ?? 10_000;
  }

  /** The wait before the next try after a fault of this box: retryDelayMs doubled per failure in a row, at most DISK_RETRY_MAX_MS. */
  private diskRetryMs(): number {
    return Math.min(this.retryDelayMs * 2 ** Math.min(this.diskFailures, 30), Math.max(DISK_RETRY_MAX_MS, this.retryDelayMs));
  }

  /** The OTA load limit (detector.loadTimeoutMs). */
  private get loadTimeoutMs(): number {
    return this.opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  }

  get runningVersion(): string | undefined {
    return this.running?.version;
  }

  /** Opens the committed version (or the factory model) and starts listening; returns the detector for the pipeline. */
  async start(): Promise<SwappableDetector> {
    if (this.started) return this.detector;
    this.started = true;
    try {
      return await this.open();
    } catch (err) {
      // Not started: stop() has nothing to close. It used to close a detector never opened, and
      // "Cannot read properties of undefined (reading 'close')" hid the real error (e.g. models/
      // not writable by the service user).
      this.started = false;
      throw err;
    }
  }

  private async open(): Promise<SwappableDetector> {
    this.store.init();
    // A key file that holds no usable key fails here, not as a refusal of every model (E_KEY). A bad
    // block beside a usable key (a damaged paste during a key change, a private key) is skipped, said here.
    this.store.trustedKeys();
    for (const skipped of this.store.skippedKeys()) this.log.error({ keyFile: this.opts.publicKeyFile, code: 'E_KEY' }, skipped);
    this.desiredRev = this.store.desiredRev();
    this.factoryName = this.opts.factory.name ?? await loadModelMetadata(this.opts.factory.modelPath).then((m) => m.name, () => undefined);
    const { installed, unusable } = await this.store.openCurrent();
    this.running = installed;
    if (!this.running) throw new OtaError('E_NO_MODEL', `No model for ${this.role}: neither a committed version in ${this.store.root} nor a factory model.`);
    const fellBack = this.fallbackReport(unusable);
    // Versions piled up by an agent that never deleted any, or left by a crash before a prune.
    await this.pruneStore({ atStart: true });
    const det = await this.opts.openDetector(this.running.modelPath);
    this.detector = new SwappableDetector(det, this.running.version);
    this.detector.observe((s) => this.health.add(s));
    this.opts.link.on('desired', this.onDesired);
    this.opts.link.on('ota', this.onOta);
    this.opts.link.on('connect', this.onConnect);
    this.report(fellBack ?? { role: this.role, phase: 'idle', version: this.running.version, ts: this.now() });
    return this.detector;
  }

  /**
   * The committed version that no longer verifies at start (a signature no pinned key verifies, as after a
   * key change that removed the key it was signed with; damaged files) is logged as an error and reported
   * refused with its code, naming what runs instead; it used to fall back without a word, reporting idle.
   * Not remembered as failed: it was committed here, and comes back when a desired state brings it again.
   */
  private fallbackReport(unusable: { version: string; code: string; reason: string }[]): OtaReport | undefined {
    const first = unusable[0];
    if (!first) return undefined;
    const running = this.running!.version;
    const instead = running === this.opts.factory.version ? `the factory model ${running}` : `the previous committed version ${running}`;
    for (const u of unusable) {
      this.log.error({ version: u.version, code: u.code, reason: u.reason, running }, `committed model version ${u.version} does not verify (${u.code}); running ${instead} instead`);
    }
    const also = unusable.slice(1).map((u) => ` ${u.version} (previous) did not verify either: ${u.code}.`).join('');
    const reason = `Committed version ${first.version} does not verify at start, running ${instead} instead:${also} ${first.reason}`;
    return { role: this.role, phase: 'refused', version: first.version, code: first.code, reason: reason.slice(0, 500), ts: this.now() };
  }

  async stop(opts: { closeDetector?: boolean } = {}): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearTimeout(this.retryTimer);
    this.abort.abort();
    this.opts.link.off('desired', this.onDesired as never);
    this.opts.link.off('ota', this.onOta as never);
    this.opts.link.off('connect', this.onConnect as never);
    await this.installing?.catch(() => undefined);
    if (opts.closeDetector ?? true) await this.detector.close();
  }

  /** Resolves when no install is running. */
  async idle(): Promise<void> {
    while (this.installing) await this.installing.catch(() => undefined);
  }

  status(): { role: string; running: string | undefined; last: OtaReport | undefined; counts: OtaManager['counts'] } {
    return { role: this.role, running: this.running?.version, last: this.lastReport, counts: { ...this.counts } };
  }

  private handleDesired(d: DesiredPayload): void {
    if (!this.followDesired(d)) return;
    const raw = d.models[this.role];
    if (!raw) return;
    const r = desiredModelValidator.check(raw);
    if (!r.ok) {
      const i = r.issues[0];
      this.report({ role: this.role, phase: 'refused', code: 'E_DESIRED', reason: `desired.models.${this.role}: ${i?.path || '/'} expected ${i?.expected} but received ${i?.received}`, version: raw.version, ts: this.now() });
      return;
    }
    // A new desired state (not the same one again, as at a reconnect) is tried at once and, after a full disk, starts the backoff over.
    if (this.desired?.rev !== d.rev || this.desired.entry.version !== r.value.version) this.diskFailures = 0;
    this.desired = { rev: d.rev, entry: r.value };
    this.kick();
  }

  /** Whether `d` is not older than the desired state followed (see DESIRED_RESET_MIN_GAP_MS); records it when so. */
  private followDesired(d: DesiredPayload): boolean {
    const seen = this.desiredRev;
    // Revs of another epoch count from another start (a reset server database): only the stamps compare.
    const otherEpoch = seen?.epoch !== undefined && d.epoch !== undefined && d.epoch !== seen.epoch;
    const stale = seen !== undefined && (otherEpoch ? d.ts <= seen.ts : d.rev < seen.rev && d.ts <= seen.ts + DESIRED_RESET_MIN_GAP_MS);
    if (stale) {
      const key = `${d.epoch ?? ''}/${d.rev}`;
      if (this.ignoredRev !== key) {
        this.ignoredRev = key;
        this.log.info({ rev: d.rev, ts: d.ts, epoch: d.epoch, followedRev: seen.rev, followedTs: seen.ts, followedEpoch: seen.epoch },
          otherEpoch ? 'desired state ignored: from another fleet server database, sent before the one followed (a stale retained message)'
            : 'desired state ignored: older than the one followed (a stale retained message)');
      }
      return false;
    }
    if (otherEpoch) {
      // Once: the epoch followed from now on is this one.
      this.log.info({ rev: d.rev, epoch: d.epoch, followedRev: seen.rev, followedEpoch: seen.epoch }, 'desired revs start again: a new fleet server database (another epoch); its desired state is followed');
    }
    // The same rev again (a retained message at reconnect, a server republishing) keeps the latest stamp.
    // The version is kept too: at the next start it is the desired one before any message comes (pruneStore).
    const version = d.models[this.role]?.version;
    const next: DesiredRev = {
      rev: d.rev, ts: seen && !otherEpoch && d.rev === seen.rev ? Math.max(seen.ts, d.ts) : d.ts,
      ...(typeof version === 'string' ? { version } : {}), ...(d.epoch !== undefined ? { epoch: d.epoch } : {}),
    };
    if (next.rev !== seen?.rev || next.ts !== seen.ts || next.version !== seen.version || next.epoch !== seen.epoch) {
      this.desiredRev = next;
      this.ignoredRev = undefined;
      try {
        this.store.setDesiredRev(next);
      } catch (err) {
        // Still followed in memory; only a restart before the next write would forget it.
        this.log.warn({ err: describeError(err).message }, `cannot persist the desired rev in ${this.store.root}`);
      }
    }
    return true;
  }

  private kick(): void {
    if (!this.started || !this.desired) return;
    if (this.installing) { this.again = true; return; }
    this.installing = this.converge().finally(() => {
      this.installing = undefined;
      if (this.again && this.started) { this.again = false; this.kick(); }
    });
  }

  private async converge(): Promise<void> {
    try {
      await this.convergeOnce();
    } finally {
      // No install runs here (one at a time, and this is its end): nothing being staged or downloaded.
      await this.pruneStore({ atStart: false });
    }
  }

  private async convergeOnce(): Promise<void> {
    const want = this.desired;
    if (!want) return;
    const { entry } = want;
    const installed = entry.version === this.running?.version ? this.running : await this.store.load(entry.version).catch(() => undefined);
    const conflict = installed && this.versionConflict(installed, entry);
    if (conflict) {
      if (this.lastReport?.version !== entry.version || this.lastReport.code !== 'E_VERSION_CONFLICT') {
        this.counts.refused += 1;
        this.log.warn({ version: entry.version, reason: conflict }, 'install refused');
        this.report({ role: this.role, phase: 'refused', version: entry.version, rollout: entry.rollout, code: 'E_VERSION_CONFLICT', reason: conflict, ts: this.now() });
      }
      return;
    }
    if (entry.version === this.running?.version) {
      if (this.lastReport?.version !== entry.version || this.lastReport.phase !== 'committed') {
        this.report({ role: this.role, phase: 'committed', version: entry.version, rollout: entry.rollout, reason: 'already running', ts: this.now() });
      }
      return;
    }
    // A version that proved itself here is never held as failed: an entry for it in failed.json is a
    // rollback refused by an older agent (it put rollbacks through the comparative health window).
    const proven = this.provenHere({ version: entry.version, name: entry.manifest?.name ?? installed?.manifest?.name });
    const failed = proven ? undefined : this.store.failureOf(entry.manifest?.name, entry.version, entry.signature);
    if (failed) {
      const phase: OtaPhase = failed.code === 'E_HEALTH' ? 'rolled-back' : 'refused';
      if (this.lastReport?.version !== entry.version || this.lastReport.phase !== phase) {
        this.report({ role: this.role, phase, version: entry.version, rollout: entry.rollout, code: failed.code, reason: `not retried: ${failed.reason}`, ts: this.now() });
      }
      return;
    }
    try {
      await this.install(entry, installed);
      this.diskFailures = 0;
    } catch (err) {
      const disk = isLocalFault(err);
      const retryMs = disk ? this.diskRetryMs() : this.retryDelayMs;
      const e = disk ? this.diskFault(entry.version, err, retryMs) : describeError(err);
      const transient = TRANSIENT.has(e.code);
      if (!transient) {
        // A known-good version that failed to load or self-test now (a damaged copy, say), or that is no
        // longer installed and came without a manifest to download it again, is not remembered as failed:
        // a later desired message or reconnect tries it again; not the timer, as nothing would change
        // but another refusal reported every retryDelayMs.
        if (!proven) {
          try {
            // A load past the limit is remembered with the limit, so that a raised limit tries the version
            // again; a bad signature with the signature and the pinned keys, so that a fixed key file does.
            this.store.markFailed(entry.manifest?.name, entry.version, e.code, e.message, {
              ...(e.code === 'E_LOAD_TIMEOUT' ? { loadTimeoutMs: this.loadTimeoutMs } : {}), signature: entry.signature,
            });
          } catch (markErr) {
            // A full disk: the refusal is still reported, but not remembered; a later desired state tries the version again.
            this.log.warn({ version: entry.version, err: describeError(markErr).message }, `cannot record the refusal in ${this.store.root}`);
          }
        }
      } else if (e.code !== 'E_ABORTED') {
        // A reconnect or a new desired state retries at once; without either (the link stayed up while
        // chunks stopped), the timer does, so the device does not wait for the wave timeout.
        clearTimeout(this.retryTimer);
        if (disk) this.diskFailures += 1;
        this.retryTimer = setTimeout(() => this.kick(), retryMs);
        this.retryTimer.unref();
      }
      const phase: OtaPhase = e.code === 'E_HEALTH' ? 'rolled-back' : transient ? 'failed' : 'refused';
      this.counts[phase === 'rolled-back' ? 'rolledBack' : phase === 'failed' ? 'failed' : 'refused'] += 1;
      this.log.warn({ version: entry.version, code: e.code, reason: e.message }, `install ${phase}`);
      this.report({ role: this.role, phase, version: entry.version, rollout: entry.rollout, code: e.code, reason: e.message, ts: this.now() });
    }
  }

  /**
   * A fault of this box met while installing `version` (a full disk, an I/O error: isLocalFault): not the
   * version's, so it is reported as E_DISK (phase failed) and tried again like a stalled transfer. It used
   * to be remembered as a refusal of the version, never tried again even once space was freed.
   */
  private diskFault(version: string, err: unknown, retryMs: number): { code: string; message: string } {
    const e = err as NodeJS.ErrnoException;
    const retryS = retryMs / 1000;
    return {
      code: 'E_DISK',
      message: `Cannot install ${version}: ${e.code} (${e.message}) in the model store ${this.store.root}, a fault of this box, not of the model. ` +
        `Free space (or fix the disk, or the store's permissions); the install is tried again in ${retryS} s (the wait doubles while the fault lasts, up to ${DISK_RETRY_MAX_MS / 1000} s) and at the next desired state or reconnect.`,
    };
  }

  /**
   * Throws ENOSPC, with the figures, when the store's file system has no room for the rest of the
   * artifact (and the stage step's few files): a download into a full disk wrote until write(2) failed,
   * on every retry (from byte 0 again where the server ignores Range). Not checked where statfs fails.
   */
  private checkSpace(manifest: Manifest, part: string): void {
    const have = existsSync(part) ? Math.min(statSync(part).size, manifest.size) : 0;
    const need = manifest.size - have + STAGE_HEADROOM_BYTES;
    const dir = dirname(part);
    let free: number;
    try {
      free = this.opts.freeBytes ? this.opts.freeBytes(dir) : freeBytesOf(dir);
    } catch (err) {
      this.log.debug({ err: describeError(err).message, dir }, 'cannot tell the free space of the model store; downloading without checking it');
      return;
    }
    if (free >= need) return;
    throw Object.assign(new Error(`${manifest.name}@${manifest.version} needs ${sizeText(need)} more (${sizeText(manifest.size)}, of which ${sizeText(have)} downloaded, and ${sizeText(STAGE_HEADROOM_BYTES)} to stage it) but ${dir} has ${sizeText(free)} free; not downloaded`), { code: 'ENOSPC' });
  }

  /**
   * A version names one model of this role. A desired entry whose signed manifest names another model
   * than the one installed here under that version (running, previous or factory) would otherwise be
   * taken as "already running" or load the wrong files: it is refused, and not remembered as failed,
   * so the installed model of that version can still be desired (a rollback to it, say).
   */
  private versionConflict(installed: InstalledVersion, entry: DesiredModel): string | undefined {
    const want = entry.manifest?.name;
    if (!want) return undefined;
    const have = installed.manifest?.name ?? (installed.version === this.opts.factory.version ? this.factoryName : undefined);
    if (!have || have === want) return undefined;
    return `Desired ${want}@${entry.version} has the version of ${have}@${entry.version}, installed here for role ${this.role}; ` +
      `a version must name one model per role: publish ${want} under a version this role has not used.`;
  }

  /**
   * Whether this artifact proved itself on this device: the factory model, or a version committed here
   * before (after its health window). Going back to one (a rollback, a return to the factory model) is no
   * trial: the health window compares a candidate with the model it replaces, and would refuse an older
   * model for being slower or finding less than the newer one it replaces. With a name or sha256 known on
   * both sides they must match, so another artifact published under the version is still tried.
   */
  private provenHere(a: { version: string; name?: string; sha256?: string }): boolean {
    const same = (x: string | undefined, y: string | undefined) => x === undefined || y === undefined || x === y;
    if (a.version === this.opts.factory.version) return same(a.name, this.factoryName);
    const c = this.store.committed(a.version);
    return c !== undefined && same(a.name, c.name) && same(a.sha256, c.sha256);
  }

  private get keepVersions(): number {
    return this.opts.keepVersions ?? DEFAULT_KEEP_VERSIONS;
  }

  /**
   * Deletes the version directories no longer needed, so that every update does not add its size to
   * the disk for good. Kept: the running version, the previous one (what a rollback goes to), the
   * `keepVersions` newest committed, and the desired version unless it is recorded as failed (being
   * installed, or tried again: a stalled transfer, a health window cut by a stop). At start-up, before
   * any desired message, the desired version is the one persisted with its rev (a trial cut by a
   * restart is tried again from its directory). After a desired state is handled, partial downloads of
   * anything but the desired artifact go as well (at start-up they stay: the resume point of the desired
   * one, whose manifest is not known yet). A failure is logged: disk space is no reason to fail a model
   * update.
   */
  private async pruneStore(o: { atStart: boolean }): Promise<void> {
    const want = this.desired?.entry;
    const desiredVersion = want?.version ?? this.desiredRev?.version;
    try {
      const removed = await this.store.prune({
        keepCommitted: this.keepVersions, keep: [this.running?.version],
        ...(desiredVersion !== undefined ? { desired: { version: desiredVersion, name: want?.manifest?.name } } : {}),
      });
      const failed = want && !this.store.committed(want.version) && this.store.failureOf(want.manifest?.name, want.version);
      const partials = o.atStart ? [] : await this.store.prunePartials(want?.manifest && !failed ? this.store.partPath(want.manifest) : undefined);
      if (removed.length || partials.length) this.log.info({ removed, partials, kept: this.store.installedVersions() }, `deleted model versions no longer needed from ${this.store.root}`);
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, `cannot delete old model versions from ${this.store.root}; they stay on disk until the next try`);
    }
  }

  private async step(step: InstallStep, version: string, phase?: OtaPhase, extra: Partial<OtaReport> = {}): Promise<void> {
    if (phase) this.report({ role: this.role, phase, version, ...extra, ts: this.now() });
    await this.opts.atStep?.(step, version);
  }

  /** `local`: the version as installed here, already loaded and verified by converge (undefined: download it). */
  private async install(entry: DesiredModel, local: InstalledVersion | undefined): Promise<void> {
    const v = entry.version;
    const base = { rollout: entry.rollout };
    let installed = local;
    if (!installed) {
      if (!entry.manifest || !entry.signature) {
        throw new OtaError('E_DESIRED', this.store.committed(v)
          ? `Desired version ${v} was committed here before but is not installed here any more (deleted as older than the ${this.keepVersions} newest committed versions kept, or damaged), and the desired state came without a signed manifest to download it again; the fleet server sends one when its registry holds the artifact.`
          : `Desired version ${v} is not installed here and came without a signed manifest.`);
      }
      const manifest: Manifest = this.store.verify(entry.manifest, entry.signature);
      this.store.signatureVerified(manifest.name, v);
      if (manifest.version !== v) throw new OtaError('E_DESIRED', `Desired version ${v} but its manifest is for ${manifest.version}.`);
      const target = this.opts.target ?? 'onnx-cpu';
      if (manifest.target !== target) throw new OtaError('E_TARGET', `Artifact ${manifest.name}@${v} is built for ${manifest.target} but this device runs ${target}; publish a ${target} artifact for this version.`);
      const part = this.store.partPath(manifest);
      this.checkSpace(manifest, part);
      await this.step('download', v, 'downloading', base);
      const dl = entry.url
        ? await downloadHttp({ url: entry.url, manifest, partPath: part, signal: this.abort.signal, onProgress: this.opts.onProgress })
        : await this.downloader.download(manifest, part, this.abort.signal);
      await this.step('verify', v, 'verifying', { ...base, bytes: dl.bytes, resumedFrom: dl.resumedFrom });
      try {
        await checkArtifact(part, manifest);
      } catch (err) {
        rmSync(part, { force: true });
        throw err;
      }
      await this.step('stage', v, 'staging', base);
      installed = this.store.stage({
        partPath: part, manifest, signature: entry.signature,
        meta: { name: manifest.name, version: manifest.version, ...(manifest.inputs[0] ? { input: manifest.inputs[0].name } : {}), preprocess: manifest.preprocess, decoder: manifest.decoder, labels: manifest.labels },
      });
    }
    await this.step('load', v, 'loading', base);
    const candidate = await this.load(installed.modelPath, v);
    await this.step('self-test', v, 'self-test', base);
    try {
      await this.selfTest(candidate, v);
    } catch (err) {
      await candidate.close();
      throw err;
    }
    const previous = this.running!;
    const factory = installed.version === this.opts.factory.version && !installed.manifest;
    if (this.provenHere({ version: v, name: installed.manifest?.name ?? (factory ? this.factoryName : undefined), sha256: installed.manifest?.sha256 })) {
      await this.switchBack(candidate, installed, previous, base);
      return;
    }
    await this.step('swap', v, undefined);
    try {
      await this.detector.swap(candidate, v, { keepFallback: true });
    } catch (err) {
      await candidate.close();
      throw err;
    }
    this.health.startTrial(v);
    await this.step('health', v, 'health', base);
    const verdict = await this.waitHealth(entry.healthWindowMs ?? this.gate.windowMs);
    if (this.abort.signal.aborted) {
      // Stopped mid-window: too few frames to judge, so the committed version stays; the next start tries again.
      const rejected = await this.detector.revert();
      this.health.endTrial(false);
      await rejected?.close();
      throw new OtaError('E_ABORTED', `The agent stopped during the health window of ${v}; ${previous.version} stays committed and ${v} is tried again at the next start.`);
    }
    if (!verdict.ok) {
      const rejected = await this.detector.revert();
      this.health.endTrial(false);
      await rejected?.close();
      this.lastHealth = verdict.figures;
      throw new OtaError('E_HEALTH', `health window failed, rolled back to ${previous.version}: ${verdict.reason}`);
    }
    await this.step('commit', v, undefined);
    try {
      this.commit(v, previous, installed);
    } catch (err) {
      // Not committed (a full or read-only disk): the previous model answers again, as current.json
      // says. The candidate used to keep answering frames while the agent reported the previous one,
      // and each retry loaded another copy of it.
      const rejected = await this.detector.revert();
      this.health.endTrial(false);
      await rejected?.close();
      throw err;
    }
    this.health.endTrial(true);
    const old = this.detector.dropFallback();
    await old?.close();
    this.counts.committed += 1;
    this.report({ role: this.role, phase: 'committed', version: v, ...base, health: verdict.figures, reason: verdict.reason, ts: this.now() });
    await this.opts.atStep?.('committed', v);
  }

  /**
   * Switches to a version that proved itself here (verified, loaded and self-tested by the caller) and
   * commits it without a health window. The health baseline restarts on its frames.
   */
  private async switchBack(candidate: DetectorLike, installed: InstalledVersion, previous: InstalledVersion, base: Partial<OtaReport>): Promise<void> {
    const v = installed.version;
    await this.step('swap', v, undefined);
    let old: DetectorLike | undefined;
    try {
      old = await this.detector.swap(candidate, v, { keepFallback: false });
    } catch (err) {
      await candidate.close();
      throw err;
    }
    this.health.resetBaseline();
    await this.step('commit', v, undefined);
    try {
      this.commit(v, previous, installed);
    } catch (err) {
      // Not committed: the model current.json names answers again (see install).
      if (old) await this.detector.swap(old, previous.version, { keepFallback: false });
      this.health.resetBaseline();
      await candidate.close();
      throw err;
    }
    await old?.close();
    this.counts.committed += 1;
    const what = installed.manifest ? 'was committed here before' : 'is the factory model';
    this.report({ role: this.role, phase: 'committed', version: v, ...base, reason: `${v} ${what}: verified, loaded and self-tested, switched from ${previous.version} without a health window`, ts: this.now() });
    await this.opts.atStep?.('committed', v);
  }

  /**
   * Writes the commit of `installed` (current.json, then the history) and makes it the running version.
   * A failed write (ENOSPC, EROFS) is rethrown with the step named; the caller swaps the previous
   * model back, so what answers frames is always what current.json and the reports name.
   */
  private commit(v: string, previous: InstalledVersion, installed: InstalledVersion): void {
    let written: ReturnType<ArtifactStore['commit']>;
    try {
      written = this.store.commit(v, previous.version, installed.manifest);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(`${e.message}; writing the commit of ${v} (current.json) failed, so ${previous.version} runs again`, { cause: err }), { code: e.code });
    }
    this.running = installed;
    if (written.historyError) {
      this.log.warn({ version: v, err: describeError(written.historyError).message }, `${v} is committed, but cannot add it to committed.json in ${this.store.root}`);
    }
  }

  /**
   * Loads version `v` within loadTimeoutMs. A load that hangs (a stuck execution provider, an engine
   * build past the limit) used to hold the installer for good: no report, and later desired states
   * waited behind it. Past the limit, or at stop(), the load is given up through its signal (the
   * adapter stops its worker), and a detector that opens after all is closed.
   */
  private async load(modelPath: string, v: string): Promise<DetectorLike> {
    const limitMs = this.loadTimeoutMs;
    const limit = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, limit.signal]);
    const opened = this.opts.openDetector(modelPath, { signal });
    let timer: NodeJS.Timeout | undefined;
    const givenUp = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => limit.abort(new OtaError('E_LOAD_TIMEOUT', `Version ${v} did not load within ${limitMs} ms (detector.loadTimeoutMs): its load or warm-up hung, ` +
        `or takes longer on this board than the limit allows (a TensorRT engine build); the load was stopped and ${this.running?.version ?? 'the running model'} keeps running. ` +
        `If loads here really take that long, raise detector.loadTimeoutMs above ${limitMs} ms and restart the agent: the version is tried again then.`)), limitMs);
      timer.unref();
      if (signal.aborted) reject(signal.reason);
      else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    givenUp.catch(() => undefined);
    try {
      return await Promise.race([opened, givenUp]);
    } catch (err) {
      if (!signal.aborted) throw new OtaError('E_LOAD', `Version ${v} does not load: ${describeError(err).message}`, { cause: err });
      // Given up: the adapter stops the worker (within its grace, or reports it stuck in native code);
      // wait for that, within a bound, so the refusal is reported once it is done. An openDetector that
      // does not heed the signal and opens after all has its detector closed.
      await Promise.race([opened.then((d) => d.close(), () => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
      throw limit.signal.aborted ? limit.signal.reason
        : new OtaError('E_ABORTED', `The agent stopped while version ${v} was loading; it is tried again at the next start.`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async selfTest(candidate: DetectorLike, v: string): Promise<void> {
    const image = this.detector.lastFrame ?? this.opts.selfTestImage;
    if (!image) return;
    for (let i = 0; i < 2; i++) {
      try {
        await withTimeout(candidate.detectTimed(image), 30_000, `self-test inference of ${v} took over 30 s`);
      } catch (err) {
        throw new OtaError('E_SELF_TEST', `Version ${v} failed its self-test: ${describeError(err).message}`, { cause: err });
      }
    }
  }

  private async waitHealth(windowMs: number): Promise<ReturnType<HealthWindow['verdict']>> {
    const t0 = this.monotonicNow();
    const hardStop = t0 + windowMs * 3 + 5000;
    for (;;) {
      const early = this.health.earlyFailure(this.gate);
      if (early) return this.health.verdict(this.gate);
      const t = this.monotonicNow();
      if (t - t0 >= windowMs && this.health.trialFrames >= this.gate.minFrames) break;
      if (t >= hardStop || this.abort.signal.aborted) break;
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(5, windowMs / 20))));
    }
    return this.health.verdict(this.gate);
  }

  private report(r: OtaReport): void {
    const withHealth = r.phase === 'rolled-back' && !r.health && this.lastHealth ? { ...r, health: this.lastHealth } : r;
    this.lastReport = withHealth;
    // The device's own log says when its model changed, not only the fleet server: the swap into the
    // health window and the commit were reported over MQTT alone (failed installs are logged where
    // they fail; a rollback as "install rolled-back").
    if (r.phase === 'health') this.log.info({ version: r.version, rollout: r.rollout, previous: this.running?.version }, `model ${r.version} swapped in; health window started`);
    if (r.phase === 'committed' && r.reason !== 'already running') this.log.info({ version: r.version, rollout: r.rollout, reason: r.reason }, `model ${r.version} committed`);
    const ok = withHealth.phase !== 'refused' && withHealth.phase !== 'failed' && withHealth.phase !== 'rolled-back';
    this.opts.link.publishReported({
      v: 1, ts: this.now(), ...(this.desired ? { rev: this.desired.rev } : {}),
      models: this.running ? { [this.role]: this.running.version } : {},
      health: { status: ok ? 'ok' : 'degraded', reasons: ok ? [] : [`${withHealth.code ?? 'E_OTA'}: ${(withHealth.reason ?? '').slice(0, 180)}`] },
      ota: withHealth,
    } as ReportedPayload);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_r, reject) => { t = setTimeout(() => reject(new OtaError('E_SELF_TEST', message)), ms); })]).finally(() => clearTimeout(t));
}

/** Bytes free for an unprivileged user (the agent's) in the file system of `dir` (statfs(2) f_bavail × f_bsize). */
function freeBytesOf(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

function sizeText(bytes: number): string {
  if (bytes < 10 * 1024) return `${bytes} B`;
  if (bytes < 10 * 1048576) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
