/**
 * Ingest: every device message enters here, from the embedded broker (in-process) or from an
 * external broker (external-source.ts). It is validated against the shared protocol schemas
 * (agent/src/protocol) and stored; a bad one is counted by kind and reason, logged once per
 * (kind, reason), and dropped, so one broken or hostile device cannot harm the server or others.
 */
import { Counter, type Registry } from 'prom-client';
import { decodePayload, parseTopic, TOPIC_DIRECTION, type TopicKind } from '../../../agent/src/protocol/index.js';
import { describeError } from '../../../agent/src/util/errors.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import type { AlertStore } from '../db/alerts.js';
import type { DeviceStore } from '../db/devices.js';
import type { TelemetryStore } from '../db/telemetry.js';
import { DeviceRateLimiter } from './rate-limiter.js';
import { LatestOnlyLimiter } from './latest-only.js';

export { DeviceRateLimiter };

/** Kinds the server takes in; `shared: false` ones go to every replica (idempotent updates). */
export const INGEST_KINDS: { kind: TopicKind; shared: boolean }[] = [
  // Retained messages are never sent to shared subscriptions (MQTT 5 §4.8.2), and a state update is
  // idempotent, so each replica takes every state and reported message.
  { kind: 'state', shared: false },
  { kind: 'reported', shared: false },
  { kind: 'telemetry', shared: true },
  { kind: 'alert', shared: true },
  { kind: 'cmd/res', shared: true },
];

export type DropReason = 'oversized' | 'json' | 'schema' | 'topic' | 'unknown-device' | 'snapshot-not-redacted' | 'store' | 'rate';

/** Kinds that a device's rate limit applies to: those that add rows. State and reported replace one (stateRateLimit). */
const LIMITED: ReadonlySet<TopicKind> = new Set<TopicKind>(['telemetry', 'alert', 'cmd/res']);

/** A state or reported message held back by the state limit, to be handled when its turn comes. */
/** A decoded state or reported update waiting for its device's turn (only valid ones wait). */
interface HeldMessage { kind: 'state' | 'reported'; deviceId: string; value: unknown }

export interface IngestStats {
  received: number;
  dropped: number;
  droppedBy: Record<string, number>;
  alertsStored: number;
  alertsDuplicate: number;
}

export interface IngestOptions {
  devices: DeviceStore;
  telemetry: TelemetryStore;
  alerts: AlertStore;
  registry: Registry;
  logger?: Logger;
  onAlert?: (deviceId: string, id: string) => void;
  /** Called for every valid alert, new or duplicate, once it is in the database (send the receipt). */
  onAlertReceipt?: (deviceId: string, id: string) => void;
  /** Called after any message was stored (live views: the dashboard's event stream). */
  onStored?: (kind: TopicKind, deviceId: string, value: unknown) => void;
  /** Per-device limit on telemetry, alerts and command results (config `ingest`). */
  rateLimit?: { perDeviceRate: number; perDeviceBurst: number };
  /**
   * Per-device limit on state and on reported updates, each (config `ingest`): past it only the
   * newest is kept and stored once the device is within its limit again; the ones it replaced are
   * dropped and counted (reason `rate`).
   */
  stateRateLimit?: { perDeviceStateRate: number; perDeviceStateBurst: number };
}

export class Ingest {
  private readonly log: Logger;
  private readonly messages: Counter<'kind'>;
  private readonly drops: Counter<'kind' | 'reason'>;
  private readonly alertsCounter: Counter<'result'>;
  private readonly loggedOnce = new Set<string>();
  private readonly stats: IngestStats = { received: 0, dropped: 0, droppedBy: {}, alertsStored: 0, alertsDuplicate: 0 };

  private readonly limiter: DeviceRateLimiter | undefined;
  private readonly stateLimiter: LatestOnlyLimiter<HeldMessage> | undefined;

  constructor(private readonly opts: IngestOptions) {
    this.log = opts.logger ?? moduleLogger('ingest');
    this.limiter = opts.rateLimit ? new DeviceRateLimiter(opts.rateLimit.perDeviceRate, opts.rateLimit.perDeviceBurst) : undefined;
    const sl = opts.stateRateLimit;
    this.stateLimiter = sl && new LatestOnlyLimiter<HeldMessage>({
      rate: sl.perDeviceStateRate, burst: sl.perDeviceStateBurst,
      deliver: (_key, m) => this.storeDecoded(m.kind, m.deviceId, m.value),
      onSuperseded: (_key, m) => this.drop(m.kind, 'rate', `device ${m.deviceId} sends ${m.kind} updates faster than ${sl.perDeviceStateRate}/s (burst ${sl.perDeviceStateBurst}): only the newest is stored`, m.deviceId),
    });
    const registers = [opts.registry];
    this.messages = new Counter({ name: 'ef_ingest_messages_total', help: 'Device messages received, by kind', labelNames: ['kind'], registers });
    this.drops = new Counter({ name: 'ef_ingest_dropped_total', help: 'Device messages dropped, by kind and reason', labelNames: ['kind', 'reason'], registers });
    this.alertsCounter = new Counter({ name: 'ef_alerts_total', help: 'Alerts received: stored or duplicate (already stored)', labelNames: ['result'], registers });
  }

  /** Handles one message; never throws. */
  handle(topic: string, payload: Buffer): void {
    this.stats.received += 1;
    const t = parseTopic(topic);
    if (!t || t.kind === 'ota' || t.kind === 'other' || TOPIC_DIRECTION[t.kind] !== 'device') {
      // OTA requests are handled by the OTA module's own subscription.
      if (t?.kind !== 'ota') this.drop('unknown', 'topic', `no ingest for topic ${topic}`);
      return;
    }
    const kind = t.kind;
    this.messages.inc({ kind });
    // Before any parsing: a flood costs one map lookup per message. No receipt for a dropped alert,
    // so the agent sends it again once its acknowledgement times out.
    if (this.limiter && LIMITED.has(kind) && !this.limiter.take(t.deviceId)) {
      this.drop(kind, 'rate', `device ${t.deviceId} is over its limit of ${this.opts.rateLimit!.perDeviceRate} messages/s (burst ${this.opts.rateLimit!.perDeviceBurst})`, t.deviceId);
      return;
    }
    // An empty retained payload clears the retained message (MQTT 5 §3.3.1.3); nothing to store. On
    // the topics that are never retained it is a bad message like any other, and counted.
    if (payload.length === 0) {
      if (kind !== 'state' && kind !== 'reported') this.drop(kind, 'empty', 'empty payload', t.deviceId);
      return;
    }
    const d = decodePayload(kind, payload);
    if (!d.ok) {
      this.drop(kind, d.reason, d.detail, t.deviceId);
      return;
    }
    // Each state or reported update rewrites the device's row: a device flooding them would keep
    // the database busy for nothing but the last one. Past its limit only the newest waits for its turn.
    // Decoded first: a malformed update is counted as what it is, and never takes a valid one's place.
    if (this.stateLimiter && (kind === 'state' || kind === 'reported')) {
      this.stateLimiter.offer(`${t.deviceId}/${kind}`, { kind, deviceId: t.deviceId, value: d.value });
      return;
    }
    this.storeDecoded(kind, t.deviceId, d.value);
  }

  getStats(): IngestStats {
    return { ...this.stats, droppedBy: { ...this.stats.droppedBy } };
  }

  /** State and reported updates held back by their limit right now (at most one of each per device). */
  get heldUpdates(): number {
    return this.stateLimiter?.heldCount ?? 0;
  }

  /**
   * Drops the updates held back by the state limit and cancels their timers: call before the
   * database closes. The broker sends each device's retained state and reported again at the next
   * start. Safe twice.
   */
  stop(): void {
    this.stateLimiter?.stop();
  }

  /** Stores one decoded message; never throws. */
  private storeDecoded(kind: TopicKind, deviceId: string, value: unknown): void {
    try {
      if (!this.opts.devices.get(deviceId)) {
        this.drop(kind, 'unknown-device', `device ${deviceId} is not registered`, deviceId);
        return;
      }
      // A resent alert the server already has is receipted again but announced once.
      if (this.store(kind, deviceId, value)) this.opts.onStored?.(kind, deviceId, value);
    } catch (err) {
      this.drop(kind, 'store', describeError(err).message, deviceId);
    }
  }

  /** Stores the message; false for an alert already stored (a resend). */
  private store(kind: TopicKind, deviceId: string, value: unknown): boolean {
    switch (kind) {
      case 'state':
        this.opts.devices.applyState(deviceId, value as Parameters<DeviceStore['applyState']>[1]);
        break;
      case 'reported':
        this.opts.devices.applyReported(deviceId, value as Parameters<DeviceStore['applyReported']>[1]);
        break;
      case 'telemetry': {
        const tel = value as Parameters<TelemetryStore['insert']>[1];
        this.opts.telemetry.insert(deviceId, tel);
        this.opts.devices.applyTelemetry(deviceId, tel.drift.flagged, tel.models);
        break;
      }
      case 'alert': {
        const a = value as Parameters<AlertStore['insert']>[1];
        const stored = this.opts.alerts.insert(deviceId, a);
        this.opts.devices.touch(deviceId);
        if (stored) { this.stats.alertsStored += 1; this.alertsCounter.inc({ result: 'stored' }); this.opts.onAlert?.(deviceId, a.id); }
        else { this.stats.alertsDuplicate += 1; this.alertsCounter.inc({ result: 'duplicate' }); }
        this.opts.onAlertReceipt?.(deviceId, a.id);
        return stored;
      }
      case 'cmd/res':
        this.opts.devices.touch(deviceId);
        break;
      default:
        break;
    }
    return true;
  }

  private drop(kind: string, reason: DropReason | string, detail: string, deviceId?: string): void {
    this.stats.dropped += 1;
    const key = `${kind}:${reason}`;
    this.stats.droppedBy[key] = (this.stats.droppedBy[key] ?? 0) + 1;
    this.drops.inc({ kind, reason });
    if (!this.loggedOnce.has(key)) {
      this.loggedOnce.add(key);
      this.log.warn({ kind, reason, deviceId, detail }, 'dropped a bad device message (logged once per kind and reason; see ef_ingest_dropped_total)');
    }
  }
}
