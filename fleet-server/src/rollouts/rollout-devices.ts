/**
 * The device side of a rollout (the engine, rollout-engine.ts, drives waves, gate and state): what
 * each device is sent (the version at its assignment, the version before at a rollback or an abort)
 * and what its reports make of its row: succeeded (runs the version, committed after its health
 * window), failed (refused, rolled itself back, or silent past `waveTimeoutMs`), or left assigned.
 * Every row it changes is told to `onChanged` (the engine's `rollout` events).
 */
import type { Logger } from '../../../agent/src/util/log.js';
import type { DesiredModel, OtaReport } from '../../../agent/src/protocol/ota.js';
import type { DeviceStore } from '../db/devices.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { DesiredStore } from '../ota/desired-store.js';
import type { RolloutDeviceRecord, RolloutRecord, RolloutStore } from './rollout-store.js';

export interface RolloutDevicesOptions {
  store: RolloutStore;
  devices: DeviceStore;
  registry: ModelRegistry;
  desired: DesiredStore;
  log: Logger;
  /** A device's row in this rollout changed. */
  onChanged: (rolloutId: string) => void;
}

type Reported = { models?: Record<string, string>; ota?: OtaReport } | null | undefined;

export class RolloutDevices {
  constructor(private readonly opts: RolloutDevicesOptions) {}

  /** A pending device of the current wave is sent the version (its desired state), or fails when it cannot be. */
  assign(r: RolloutRecord, d: RolloutDeviceRecord): void {
    const previousVersion = this.reportOf(d.deviceId)?.models?.[r.role] ?? null;
    const entry = this.entryFor(r, r.version);
    // Checked at creation, but the device may have taken another role since: its desired message
    // with this entry would be over what an agent accepts. It fails here (the gate decides), never
    // assigned, rather than a throw that ends the tick for every rollout after this one.
    const refused = this.opts.desired.refusal(d.deviceId, r.role, entry);
    if (refused) {
      this.setDevice(r.id, d.deviceId, { status: 'failed', reason: `not assigned: ${refused}`, previousVersion });
      return;
    }
    this.setDevice(r.id, d.deviceId, { status: 'assigned', previousVersion, assigned: true });
    this.opts.desired.set(d.deviceId, r.role, entry);
  }

  /** An assigned device's outcome from its report: succeeded, failed, or left assigned (in progress). */
  judge(r: RolloutRecord, d: RolloutDeviceRecord, now: number): void {
    const rep = this.reportOf(d.deviceId);
    const running = rep?.models?.[r.role];
    const ota = rep?.ota;
    // A device that had never reported when it was assigned: its first report still names the version
    // it ran before (it changes only at commit), which is what a rollback must send it back to.
    if (d.previousVersion === null && running && running !== r.version) {
      this.setDevice(r.id, d.deviceId, { status: 'assigned', reason: d.reason, previousVersion: running });
      d.previousVersion = running;
    }
    // 'failed' is the agent's transient outcome (a stalled transfer it retries by itself): still in
    // progress, judged by waveTimeoutMs like a silent device, not a gate failure at once.
    if (ota?.version === r.version && (ota.phase === 'refused' || ota.phase === 'rolled-back')) {
      this.setDevice(r.id, d.deviceId, { status: 'failed', reason: `${ota.phase}: ${ota.code ?? ''} ${ota.reason ?? ''}`.trim() });
    } else if (committed(r, rep)) {
      this.setDevice(r.id, d.deviceId, { status: 'succeeded' });
    } else if (d.assignedAtMs !== null && now - d.assignedAtMs > r.gate.waveTimeoutMs) {
      const last = ota?.phase === 'failed' ? `failed: ${ota.code ?? ''} ${ota.reason ?? ''}`.trim() : ota?.phase ?? 'none';
      this.setDevice(r.id, d.deviceId, { status: 'failed', reason: `timeout: no healthy report within ${r.gate.waveTimeoutMs} ms (last phase ${last})` });
    }
  }

  /**
   * Failed devices that now report the rollout's version committed, their desired state still naming
   * its model and version, succeeded after all. After a rollback (the gate's or the operator's) it names the version
   * before: the device reporting this one is on its way back, not a success.
   */
  recheckFailed(r: RolloutRecord, failed: RolloutDeviceRecord[]): void {
    for (const d of failed) {
      const rep = this.reportOf(d.deviceId);
      const running = rep?.models?.[r.role];
      if (committed(r, rep) && this.stillSends(r, d.deviceId)) {
        this.setDevice(r.id, d.deviceId, { status: 'succeeded', reason: `committed after it had failed (${d.reason ?? 'no reason'})` });
        d.status = 'succeeded';
      } else if (d.previousVersion === null && running && running !== r.version) {
        // Silent since its assignment (offline): its first report names what a rollback sends it back to.
        this.setDevice(r.id, d.deviceId, { status: 'failed', reason: d.reason, previousVersion: running });
        d.previousVersion = running;
      }
    }
  }

  /**
   * "Devices keep what they run" at an abort: a device sent the version that does not run it yet
   * (offline, downloading) would install it later, its desired state still naming it, and its row
   * would stay assigned for good. It goes back to what it ran before; one that runs the version keeps it.
   * A failed device of a rollout its gate paused was sent back already: reporting the version, it is
   * on its way back (as in recheckFailed), and stays failed.
   */
  abort(r: RolloutRecord, d: RolloutDeviceRecord): void {
    if ((d.status !== 'assigned' && d.status !== 'failed') || d.assignedAtMs === null) return;
    const rep = this.reportOf(d.deviceId);
    if (committed(r, rep) && this.stillSends(r, d.deviceId)) {
      this.setDevice(r.id, d.deviceId, { status: 'succeeded' });
      return;
    }
    if (rep?.models?.[r.role] === r.version) {
      // In its health window: it commits or rolls back by itself, and the ticks judge its row then
      // (the engine's settleFinished); left as it was, it stayed assigned for good.
      if (d.status === 'assigned') this.setDevice(r.id, d.deviceId, { status: 'assigned', reason: `in its health window when aborted: keeps ${r.version} if it commits` });
      return;
    }
    const current = this.opts.desired.get(d.deviceId)[r.role];
    if (current?.rollout !== r.id || current.version !== r.version) return; // a gate rollback already moved it
    const prev = d.previousVersion ? this.entryFor(r, d.previousVersion) : undefined;
    // Without a previous entry (never reported, or one over what the agent accepts) the role is
    // cleared: the agent keeps what it runs.
    const back = prev && !this.opts.desired.refusal(d.deviceId, r.role, prev) ? prev : undefined;
    this.opts.desired.set(d.deviceId, r.role, back);
    if (d.status === 'assigned') {
      this.setDevice(r.id, d.deviceId, { status: 'rolled-back', reason: `aborted before it installed: ${back ? `back to ${back.version}` : 'desired cleared, it keeps what it runs'}` });
    }
  }

  /**
   * Desired = the version each device ran before; failed devices already rolled themselves back. A
   * device never assigned (its desired state refused) was never sent the version: left as it is.
   */
  rollback(r: RolloutRecord, devs: RolloutDeviceRecord[]): void {
    for (const d of devs) {
      if (d.assignedAtMs === null) continue;
      const prev = d.previousVersion;
      const entry = prev ? this.entryFor(r, prev) : undefined;
      // The previous version's desired state may now be over what an agent accepts (the device took
      // on another role since). The desired store's throw left a gate rollback undone and the rollout
      // running, so every tick tried it again. The refusal is recorded once instead, and the role
      // cleared: the device keeps what it runs, and one still downloading stops (as abort does).
      const refused = entry && this.opts.desired.refusal(d.deviceId, r.role, entry);
      if (refused) {
        this.opts.desired.set(d.deviceId, r.role, undefined);
        const before = d.status === 'failed' && d.reason && !d.reason.startsWith('not rolled back') ? ` (it had failed: ${d.reason})` : '';
        this.setDevice(r.id, d.deviceId, { status: 'failed', reason: `not rolled back: ${refused} Its desired ${r.role} is cleared: it keeps what it runs; roll it back by hand${before}` });
        this.opts.log.warn({ id: r.id, deviceId: d.deviceId, reason: refused }, 'rollback of a device refused: desired state too large; its role is cleared');
        continue;
      }
      this.opts.desired.set(d.deviceId, r.role, entry);
      if (d.status !== 'failed') this.setDevice(r.id, d.deviceId, { status: 'rolled-back', reason: prev ? `back to ${prev}` : 'no previous version known (the device never reported): desired cleared, it keeps what it runs; roll it by hand' });
    }
  }

  /** The desired entry that sends a device of rollout `r` the given version, with its signed manifest when the registry has it. */
  entryFor(r: Pick<RolloutRecord, 'model' | 'platform' | 'gate' | 'id'>, version: string): DesiredModel {
    const a = this.opts.registry.artifact(r.model, version, r.platform);
    const health = r.gate.healthWindowMs !== undefined ? { healthWindowMs: r.gate.healthWindowMs } : {};
    if (!a) return { version, rollout: r.id, ...health };
    return { version, manifest: a.manifest, signature: a.signature, rollout: r.id, ...health };
  }

  /**
   * The device's desired state still names the rollout's model and version: no rollback moved it back
   * since, and no later rollout sent it another model with the same version number (a report names
   * the version only, so its commit is not this model's).
   */
  private stillSends(r: RolloutRecord, deviceId: string): boolean {
    const entry = this.opts.desired.get(deviceId)[r.role];
    return entry?.version === r.version && (entry.rollout === r.id || entry.manifest?.name === r.model);
  }

  private setDevice(id: string, deviceId: string, patch: Parameters<RolloutStore['setDevice']>[2]): void {
    this.opts.store.setDevice(id, deviceId, patch);
    this.opts.onChanged(id);
  }

  private reportOf(deviceId: string): Reported {
    return this.opts.devices.get(deviceId)?.reported as Reported;
  }
}

/** The device runs the rollout's version and committed it (its last install is of another version, or this one committed). */
function committed(r: RolloutRecord, rep: Reported): boolean {
  const ota = rep?.ota;
  return rep?.models?.[r.role] === r.version && (!ota || ota.version !== r.version || ota.phase === 'committed');
}
