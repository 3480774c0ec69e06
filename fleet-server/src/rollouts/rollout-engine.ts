/**
 * Drives rollouts wave by wave from what devices report. Each tick, for every running rollout:
 * assign the current wave's devices (write their desired state), read their `reported` state, mark
 * each succeeded (runs the version, committed after its health window), failed (refused, failed,
 * rolled back, or silent past `waveTimeoutMs`), and then
 *   - more failures than the gate allows → pause the rollout and roll the wave's devices back
 *     (desired = the version each ran before), so later waves never receive the model;
 *   - every device of the waves so far succeeded or failed (within the gate) → next wave, or completed
 *     after the last. A failed device that later reports the version committed is marked succeeded.
 * All state is in SQLite (rollout-store.ts); a restarted server carries on where it was. What each
 * device is sent and how its reports are judged is rollout-devices.ts.
 */
import { randomUUID } from 'node:crypto';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { describeError } from '../../../agent/src/util/errors.js';
import type { OtaReport } from '../../../agent/src/protocol/ota.js';
import type { DeviceStore } from '../db/devices.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { DesiredStore } from '../ota/desired-store.js';
import {
  RolloutError, RolloutStore, rolloutGateValidator, rolloutSpecValidator, waveTimeoutDefaultMs,
  type RolloutDeviceRecord, type RolloutGate, type RolloutRecord, type RolloutSpec, type RolloutState,
} from './rollout-store.js';
import { RolloutDevices } from './rollout-devices.js';

export interface RolloutEngineOptions {
  store: RolloutStore;
  devices: DeviceStore;
  registry: ModelRegistry;
  desired: DesiredStore;
  tickMs?: number;
  now?: () => number;
  logger?: Logger;
  /**
   * A rollout's state, or the status of a device in it, changed (the dashboard's live `rollout`
   * event). Called once per rollout at the end of each tick or operator action that changed it.
   */
  onChange?: (rolloutId: string) => void;
}

export interface RolloutStatus extends RolloutRecord {
  totals: { devices: number; pending: number; assigned: number; succeeded: number; failed: number; rolledBack: number; notSent: number; runningVersion: number };
  waveSizes: number[];
  devices: (RolloutDeviceRecord & { reported: { version: string | null; phase: string | null; reason: string | null } })[];
}

export class RolloutEngine {
  private timer: NodeJS.Timeout | undefined;
  private tickMs = 1000;
  /** Lease holder id of this engine (one engine drives rollouts when replicas share the database). */
  private readonly holder = randomUUID();
  private readonly log: Logger;
  private readonly now: () => number;
  /**
   * Since when this engine drives the rollouts (started, or took the lease over from a replica).
   * waveTimeoutMs counts from here at the earliest: a device mid-install while no engine ran (the
   * server down) would otherwise fail for the outage, not for anything it did.
   */
  private leaseHeld = false;
  private unsubscribeRemoved: (() => void) | undefined;
  /** Rollouts changed since the last flushChanges(). */
  private readonly changed = new Set<string>();
  private readonly devs: RolloutDevices;
  /**
   * Errors settling finished rollouts (code and message) already logged, with how often each came
   * since: the same trouble every tick is one line, not one a second. Forgotten at the first tick
   * that settles without an error, so trouble that comes back is logged again.
   */
  private readonly settleErrors = new Map<string, number>();

  constructor(private readonly opts: RolloutEngineOptions) {
    this.log = opts.logger ?? moduleLogger('rollouts');
    this.now = opts.now ?? Date.now;
    const { store, devices, registry, desired } = opts;
    this.devs = new RolloutDevices({ store, devices, registry, desired, log: this.log, onChanged: (id) => this.changed.add(id) });
  }

  /** Ticks every `tickMs` (default the option, else 1000 ms); calling it again retunes the period. */
  start(tickMs = this.opts.tickMs ?? 1000): void {
    if (this.timer === undefined) this.resumeAfterGap();
    this.unsubscribeRemoved ??= this.opts.devices.onRemoved((deviceId) => this.forgetDevice(deviceId));
    clearInterval(this.timer);
    this.tickMs = tickMs;
    this.timer = setInterval(() => this.safeTick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) this.opts.store.releaseLease(this.holder);
    clearInterval(this.timer);
    this.timer = undefined;
    this.leaseHeld = false;
    this.unsubscribeRemoved?.();
    this.unsubscribeRemoved = undefined;
  }

  create(input: unknown): { rollout: RolloutRecord; created: boolean } {
    const r = rolloutSpecValidator.check(input);
    if (!r.ok) {
      const i = r.issues[0];
      throw new RolloutError('E_INPUT', `Rollout spec: ${i?.path || '/'} expected ${i?.expected} but received ${i?.received}`);
    }
    const spec = r.value as Required<Omit<RolloutSpec, 'gate'>> & { gate?: RolloutSpec['gate'] };
    const g = rolloutGateValidator.check(spec.gate ?? {});
    if (!g.ok) throw new RolloutError('E_INPUT', `Rollout gate: ${g.issues[0]?.path} expected ${g.issues[0]?.expected}`);
    // Every device of a rollout fetches its one platform's artifact: that target sets the default.
    const gate: RolloutGate = { ...g.value, waveTimeoutMs: g.value.waveTimeoutMs ?? waveTimeoutDefaultMs(spec.platform) };
    const waves = spec.waves;
    if (waves[waves.length - 1] !== 100 || waves.some((w, i) => i > 0 && w <= waves[i - 1])) {
      throw new RolloutError('E_INPUT', `Expected ascending cumulative wave percentages ending at 100 (e.g. 5,25,100) but received ${waves.join(',')}`);
    }
    if (!this.opts.registry.artifact(spec.model, spec.version, spec.platform)) {
      throw new RolloutError('E_NOT_FOUND', `No ${spec.platform} artifact for ${spec.model}@${spec.version} in the registry; publish it first (fleetctl model publish).`);
    }
    const ids = this.resolveTarget(spec.target);
    if (ids.length === 0) throw new RolloutError('E_INPUT', `Target ${spec.target} matches no registered device.`);
    // Every device's desired message must stay within what an agent accepts, with its other roles.
    // (The rollout id is not made yet: the longest one an entry may carry stands in.)
    const entry = this.devs.entryFor({ model: spec.model, platform: spec.platform, gate, id: 'r'.repeat(64) }, spec.version);
    for (const id of ids) {
      const refused = this.opts.desired.refusal(id, spec.role, entry);
      if (refused) throw new RolloutError('E_INPUT', refused);
    }
    const out = this.opts.store.create({ ...spec, gate }, ids);
    if (out.created) {
      this.log.info({ id: out.rollout.id, model: spec.model, version: spec.version, devices: ids.length, waves }, 'rollout created');
      this.changed.add(out.rollout.id);
    }
    this.safeTick();
    this.flushChanges();
    return out;
  }

  pause(id: string): RolloutRecord {
    const r = this.must(id);
    if (r.state !== 'running') throw new RolloutError('E_STATE', `Rollout ${id} is ${r.state}; only a running rollout can be paused.`);
    this.setState(id, 'paused', 'paused by operator');
    this.flushChanges();
    return this.must(id);
  }

  resume(id: string): RolloutRecord {
    const r = this.must(id);
    if (r.state !== 'paused') throw new RolloutError('E_STATE', `Rollout ${id} is ${r.state}; only a paused rollout can be resumed.`);
    const failed = this.opts.store.devices(id).filter((d) => d.status === 'failed').length;
    if (failed > r.gate.maxFailures) throw new RolloutError('E_GATE', `Rollout ${id} was stopped by its gate (${r.reason}); roll it back and publish a fixed version in a new rollout.`);
    this.givePausedTimeBack(r);
    this.setState(id, 'running', null);
    this.safeTick();
    this.flushChanges();
    return this.must(id);
  }

  abort(id: string): RolloutRecord {
    const r = this.must(id);
    if (r.state !== 'running' && r.state !== 'paused') throw new RolloutError('E_STATE', `Rollout ${id} is already ${r.state}.`);
    // A device left in its health window is judged by waveTimeoutMs from here on, as in a running rollout.
    if (r.state === 'paused') this.givePausedTimeBack(r);
    for (const d of this.opts.store.devices(id)) this.devs.abort(r, d);
    this.setState(id, 'aborted', 'aborted by operator; devices keep what they run');
    this.flushChanges();
    return this.must(id);
  }

  rollback(id: string, reason = 'rolled back by operator'): RolloutRecord {
    const r = this.must(id);
    if (r.state === 'rolled-back') throw new RolloutError('E_STATE', `Rollout ${id} is already rolled back.`);
    // Each device goes back to what it ran before this rollout; a later rollout of the role moved it on
    // since, and would be undone behind its back.
    const all = this.opts.store.list();
    const later = all.slice(all.findIndex((o) => o.id === id) + 1).find((o) => o.role === r.role && o.state !== 'rolled-back');
    if (later) throw new RolloutError('E_STATE', `Rollout ${later.id} (${later.model}@${later.version}, ${later.state}) came after ${id} for role ${r.role}; roll it back first.`);
    this.devs.rollback(r, this.opts.store.devices(id).filter((d) => d.status !== 'pending' && d.status !== 'not-sent'));
    this.setState(id, 'rolled-back', reason);
    this.flushChanges();
    return this.must(id);
  }

  status(id: string): RolloutStatus {
    const r = this.must(id);
    const devs = this.opts.store.devices(id).map((d) => {
      const rep = this.opts.devices.get(d.deviceId)?.reported as ({ models?: Record<string, string>; ota?: OtaReport } | null | undefined);
      return { ...d, reported: { version: rep?.models?.[r.role] ?? null, phase: rep?.ota?.phase ?? null, reason: rep?.ota?.reason ?? null } };
    });
    const count = (s: string) => devs.filter((d) => d.status === s).length;
    const waveSizes = r.waves.map((_w, i) => devs.filter((d) => d.wave === i).length);
    return {
      ...r, waveSizes, devices: devs,
      totals: {
        devices: devs.length, pending: count('pending'), assigned: count('assigned'), succeeded: count('succeeded'), failed: count('failed'),
        rolledBack: count('rolled-back'), notSent: count('not-sent'), runningVersion: devs.filter((d) => d.reported.version === r.version).length,
      },
    };
  }

  /**
   * A device removed from the fleet (DELETE /api/devices/:id): out of the rollouts still running or
   * paused (a finished one keeps its record), its desired state cleared (a retained empty one is
   * published; its revision keeps growing should the id come back) and its groups dropped. Left in,
   * it timed out in its wave and the gate rolled the healthy devices back. Never throws: the device
   * is already gone.
   */
  forgetDevice(deviceId: string): void {
    try {
      for (const r of this.opts.store.list({ deviceId })) {
        if (r.state === 'running' || r.state === 'paused') this.removeDevice(r.id, deviceId);
      }
      for (const role of Object.keys(this.opts.desired.get(deviceId))) this.opts.desired.set(deviceId, role, undefined);
      this.opts.store.setGroups(deviceId, []);
      this.log.info({ deviceId }, 'device removed: out of its unfinished rollouts, desired state and groups cleared');
    } catch (err) {
      this.log.error({ deviceId, err: describeError(err) }, 'could not clear a removed device from its rollouts');
    }
    this.flushChanges();
  }

  list(opts: { deviceId?: string } = {}): RolloutRecord[] {
    return this.opts.store.list(opts);
  }

  /** One pass over the running rollouts; exposed for tests and called by the timer. */
  tick(): void {
    try {
      this.tickRollouts();
    } finally {
      this.flushChanges();
    }
  }

  private tickRollouts(): void {
    const now = this.now();
    this.opts.store.recordTick(now);
    // The finished rollouts before the running ones, as in creation order: a finished rollout of a
    // role came before the one running for it (one running or paused per role).
    this.settleFinished(now);
    for (const r of this.opts.store.list({ state: 'running' })) {
      // One rollout's trouble must not stop the others' (they are of other roles, other devices).
      try {
        this.advance(r);
      } catch (err) {
        this.log.error({ id: r.id, err: describeError(err) }, 'rollout tick failed for this rollout; the others go on');
      }
    }
  }

  /**
   * Rows of finished rollouts that a report can still change, found by one query (a query for each
   * finished rollout at every tick grew with the fleet's history):
   *   - an aborted rollout's devices still assigned (in their health window at the abort, so they kept
   *     the version) get their outcome as in a running rollout: succeeded once committed, failed when
   *     they roll themselves back or stay silent past waveTimeoutMs. No wave, no gate: it is aborted;
   *   - a device counted failed (silent past the timeout) that installs the version later: the rollout
   *     may have completed without it, been paused by the operator (resume counts it) or aborted (one
   *     that ran the version kept it), and its row said failed for good. A rolled-back rollout sent
   *     every device back: nothing there to learn.
   */
  private settleFinished(now: number): void {
    // Nothing here may stop the running rollouts, which advance after it: an error is logged and
    // the running ones go on (one device's report that broke the query stopped every rollout).
    let clean = true;
    const failed = (err: unknown, fields: Record<string, unknown>, msg: string) => {
      clean = false;
      const e = describeError(err);
      const kind = `${e.code} ${e.message}`;
      const seen = this.settleErrors.get(kind);
      if (seen !== undefined) {
        this.settleErrors.set(kind, seen + 1);
        return;
      }
      // Bounded: past 32 kinds at once, the rest are counted under one.
      if (this.settleErrors.size >= 32) {
        this.settleErrors.set('other', (this.settleErrors.get('other') ?? 0) + 1);
        return;
      }
      this.settleErrors.set(kind, 1);
      this.log.error({ ...fields, err: e }, `${msg} (logged once until finished rollouts settle without an error again)`);
    };
    try {
      for (const { rollout: r, device: d } of this.opts.store.unsettled()) {
        try {
          if (d.status === 'assigned') this.devs.judge(r, d, now);
          else this.devs.recheckFailed(r, [d]);
        } catch (err) {
          failed(err, { id: r.id, deviceId: d.deviceId }, 'could not settle a device of a finished rollout; the others go on');
        }
      }
    } catch (err) {
      failed(err, {}, 'could not settle the finished rollouts; the running ones go on');
    }
    if (clean && this.settleErrors.size > 0) {
      const repeats = [...this.settleErrors.values()].reduce((a, b) => a + b, 0);
      this.log.info({ errors: repeats }, 'finished rollouts settle again');
      this.settleErrors.clear();
    }
  }

  /**
   * Taking over rollouts (a start, or the lease from another replica): the time since any engine last
   * drove them is time no server heard the devices, so each device still installing gets it back
   * (its assignment time moves that much later, persisted). Counting the outage failed every device
   * that was installing; restarting the timeout from this engine's start instead (91170ed) let a
   * server restarting more often than waveTimeoutMs hold a silent device for ever.
   */
  private resumeAfterGap(): void {
    try {
      const last = this.opts.store.lastTick();
      const gap = last === undefined ? 0 : this.now() - last;
      if (gap > 0) {
        const shifted = this.opts.store.shiftAssignments(gap);
        if (shifted > 0) this.log.info({ gapMs: gap, devices: shifted }, 'rollouts resumed: the time no server drove them does not count against the devices installing');
      }
      this.opts.store.recordTick(this.now());
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'could not account for the time rollouts were not driven');
    }
  }

  /**
   * A paused rollout judges none of its devices still installing, so the time it was paused does not
   * count against their waveTimeoutMs: their assignment moves that much later (as for the time no
   * server drove the rollouts, which leaves paused rollouts out). Counted, an operator's pause of an
   * hour (the broker down, say) failed every device still installing at resume, and the gate rolled
   * the wave back. The pause's time is the rollout's last state change (only setState stamps it).
   */
  private givePausedTimeBack(r: RolloutRecord): void {
    const pausedMs = this.now() - r.updatedAtMs;
    if (pausedMs <= 0) return;
    const shifted = this.opts.store.shiftRolloutAssignments(r.id, pausedMs);
    if (shifted > 0) this.log.info({ id: r.id, pausedMs, devices: shifted }, 'the time the rollout was paused does not count against the devices installing');
  }

  private safeTick(): void {
    try {
      if (!this.opts.store.acquireLease(this.holder, Math.max(5000, this.tickMs * 5))) {
        this.leaseHeld = false;
        return;
      }
      if (!this.leaseHeld) this.resumeAfterGap();
      this.leaseHeld = true;
      this.tick();
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'rollout tick failed');
    }
  }

  private advance(r: RolloutRecord): void {
    const { store } = this.opts;
    const now = this.now();
    for (const d of store.devices(r.id)) {
      if (d.wave > r.wave) continue;
      // Removed from the fleet by a path that did not tell this engine (another process): it cannot report.
      if (!this.opts.devices.get(d.deviceId)) {
        this.removeDevice(r.id, d.deviceId);
        continue;
      }
      if (d.status === 'pending') {
        this.devs.assign(r, d);
        continue;
      }
      if (d.status === 'failed') this.devs.recheckFailed(r, [d]);
      if (d.status === 'assigned') this.devs.judge(r, d, now);
    }
    const devs = store.devices(r.id);
    const failed = devs.filter((d) => d.status === 'failed');
    if (failed.length > r.gate.maxFailures) {
      const why = `wave ${r.wave + 1}: ${failed.length} device(s) failed the gate (allowed ${r.gate.maxFailures}): ${failed.slice(0, 3).map((d) => `${d.deviceId} ${d.reason}`).join('; ')}`;
      this.log.warn({ id: r.id, reason: why }, 'rollout paused by its gate; rolling the wave back');
      this.devs.rollback(r, devs.filter((d) => d.status === 'assigned' || d.status === 'succeeded' || d.status === 'failed'));
      this.setState(r.id, 'paused', why);
      return;
    }
    // Failures within maxFailures do not hold the wave: it moves on once every device has an outcome.
    const current = devs.filter((d) => d.wave <= r.wave);
    if (current.every((d) => d.status === 'succeeded' || d.status === 'failed')) {
      if (r.wave >= r.waves.length - 1) {
        this.setState(r.id, 'completed', null);
        this.log.info({ id: r.id }, 'rollout completed');
      } else {
        this.setState(r.id, 'running', null, r.wave + 1);
        this.log.info({ id: r.id, wave: r.wave + 2 }, 'wave healthy; next wave');
        this.advance(this.must(r.id));
      }
    }
  }

  private setState(id: string, state: RolloutState, reason: string | null, wave?: number): void {
    this.opts.store.setState(id, state, reason, wave);
    this.changed.add(id);
  }

  private removeDevice(id: string, deviceId: string): void {
    this.opts.store.removeDevice(id, deviceId);
    this.changed.add(id);
  }

  /**
   * Tells onChange of each rollout changed since the last call, once per rollout: a tick that moves
   * 500 devices to the next wave is one event, not 500. A throwing listener is logged, never the
   * engine's trouble.
   */
  private flushChanges(): void {
    const ids = [...this.changed];
    this.changed.clear();
    if (!this.opts.onChange) return;
    for (const id of ids) {
      try {
        this.opts.onChange(id);
      } catch (err) {
        this.log.error({ id, err: describeError(err) }, 'rollout change listener failed');
      }
    }
  }

  private resolveTarget(target: string): string[] {
    const all = this.opts.devices.list().map((d) => d.id);
    if (target === 'all') return all;
    if (target.startsWith('group:')) return this.opts.store.groupMembers(target.slice(6)).filter((id) => all.includes(id));
    // A device named twice is in the rollout once (its rows are keyed by rollout + device).
    const ids = [...new Set(target.slice('devices:'.length).split(',').filter(Boolean))];
    const unknown = ids.filter((id) => !all.includes(id));
    if (unknown.length) throw new RolloutError('E_INPUT', `Unknown device(s) in target: ${unknown.join(', ')}; register them with fleetctl device add.`);
    return ids;
  }

  private must(id: string): RolloutRecord {
    const r = this.opts.store.get(id);
    if (!r) throw new RolloutError('E_NOT_FOUND', `No rollout ${id}; list them with fleetctl rollout status.`);
    return r;
  }
}
