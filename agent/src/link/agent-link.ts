/**
 * The agent's MQTT link to the fleet (MQTT.js client, MQTT 5 preferred).
 *
 * - Identity: username = device id, password = device secret (from `fleetctl device add`).
 * - Last will: `state` retained `{online:false}`; on connect the link publishes `{online:true}`
 *   retained, so the broker always holds the device's liveness (MQTT 5 §3.1.2.5 Will Flag).
 * - Protocol: `protocolVersion: 'auto'` tries MQTT 5 and falls back to 3.1.1 when the broker refuses
 *   it with "unacceptable protocol version" (CONNACK code 1). aedes 1.x, the fleet server's embedded
 *   broker, only speaks 3.1.1 (lib/handlers/connect.js refuses protocolVersion > 4); mosquitto 2 and
 *   other brokers speak 5.
 * - Reconnect: our own jittered exponential backoff (MQTT.js only has a fixed reconnectPeriod); each
 *   attempt is a fresh client with a clean session, because the persistent outbox, not the client's
 *   in-memory store, is what guarantees delivery.
 * - TLS: with `caPem` only that CA is trusted (Node's `ca` replaces the default roots), i.e. pinned.
 * - Alerts: `publishAlert()` writes to the outbox (fsync'd) and returns; a pump publishes QoS 1 in
 *   outbox order with a bounded in-flight window. An entry leaves the outbox only on the server's
 *   end-to-end receipt (`ack` topic), not on the broker's PUBACK: a broker may accept a message and
 *   still lose it (restart, a restored session without working subscriptions). After a reconnect,
 *   or when the oldest in-flight entry waited `ackTimeoutMs`, the pump resends from the oldest
 *   pending entry, in order; a message may so arrive twice and the server keeps one.
 * - Telemetry: QoS 0, dropped (and counted) while offline.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { disableNagle } from '../util/tcp-nodelay.js';
import { moduleLogger, type Logger } from '../util/log.js';
import { describeError, EdgeFleetError } from '../util/errors.js';
import {
  deviceClientId, assertDeviceId, decodePayload, topicFor, topics, AlertSchema, TelemetrySchema,
  type AckPayload, type AlertPayload, type CmdPayload, type CmdResultPayload, type DesiredPayload, type ReportedPayload, type StatePayload, type TelemetryPayload,
} from '../protocol/index.js';
import { compileSchema } from '../util/schema.js';
import { Outbox, type OutboxStats } from '../outbox/outbox.js';
import { Backoff, type BackoffOptions } from './backoff.js';

export interface AgentLinkOptions {
  deviceId: string;
  secret: string;
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  /** PEM of the only CA trusted for `mqtts://` (pinned). */
  caPem?: string | Buffer;
  /** TLS server name to verify, when it differs from the URL host. */
  servername?: string;
  protocolVersion?: 5 | 4 | 'auto';
  /** Outbox file (e.g. `<stateDir>/outbox.sqlite`) or an already constructed Outbox. */
  outbox: string | Outbox;
  outboxMaxEntries?: number;
  backoff?: BackoffOptions;
  keepaliveS?: number;
  connectTimeoutMs?: number;
  /** Outbox messages sent and awaiting the server's receipt at once. */
  inflightWindow?: number;
  /** Resend from the oldest pending entry when no receipt came within this time. */
  ackTimeoutMs?: number;
  /** Published in the retained online state. */
  identity?: Pick<StatePayload, 'agentVersion' | 'platform' | 'models'>;
  /** Wall clock (ms since the epoch) for the state's `ts`. */
  now?: () => number;
  /**
   * Monotonic clock (ms) for the receipt timeout: an NTP step of the wall clock backwards held a lost
   * alert back for as long as the step (an hour's step, an hour).
   */
  monotonicNow?: () => number;
  logger?: Logger;
}

export interface AgentLinkStatus {
  connected: boolean;
  protocolVersion: 5 | 4 | undefined;
  connects: number;
  outbox: OutboxStats;
  telemetryDroppedOffline: number;
  /** Telemetry messages not sent because they did not match the protocol (logged once per field). */
  telemetryRefused: number;
  /** Times the receipt timeout resent alerts because no receipt came in time. */
  resends: number;
  inboundDropped: Record<string, number>;
  /** Topic filters the broker refused on the last connect (its ACL); with `ack` among them no alert is ever receipted. */
  refusedSubscriptions: string[];
}

export interface AgentLinkEvents {
  connect: [{ protocolVersion: 5 | 4 }];
  disconnect: [{ reason: string }];
  desired: [DesiredPayload];
  cmd: [CmdPayload];
  /** The server confirmed an alert; it left the outbox. */
  delivered: [{ id: string }];
  /** Raw message on the device's `ota/...` server topics (agent/src/ota decodes it). */
  ota: [{ topic: string; payload: Buffer }];
}

export class LinkError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_LINK', message, options);
  }
}

const alertValidator = compileSchema(AlertSchema);
const telemetryValidator = compileSchema(TelemetrySchema);

export class AgentLink extends EventEmitter<AgentLinkEvents> {
  readonly deviceId: string;
  readonly outbox: Outbox;
  private readonly ownsOutbox: boolean;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly elapsed: () => number;
  private client: MqttClient | undefined;
  private running = false;
  private connected = false;
  private version: 5 | 4 | undefined;
  private preferV4: boolean;
  private retryTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private cursorSeq = 0;
  /** Sent entries awaiting the server's receipt: id → when sent (ms). */
  /** Alerts published and not yet receipted: what was sent, when handed to the client, and when the broker took it (PUBACK). */
  private readonly inflight = new Map<string, { topic: string; payload: Buffer; handedAt: number; takenAt?: number }>();
  private ackTimer: NodeJS.Timeout | undefined;
  private resends = 0;
  private refusedSubscriptions: string[] = [];
  private connects = 0;
  private telemetryDroppedOffline = 0;
  private telemetryRefused = 0;
  private readonly telemetryRefusedPaths = new Set<string>();
  private readonly inboundDropped: Record<string, number> = {};
  /** Why the agent is going down (reportFailure), for the offline state stop() publishes. */
  private failure: StatePayload['health'];
  /** Degraded-health reasons by source (setHealthReasons), in the order the sources first gave one. */
  private readonly healthReasons = new Map<string, string[]>();

  constructor(private readonly opts: AgentLinkOptions) {
    super();
    this.deviceId = assertDeviceId(opts.deviceId);
    this.ownsOutbox = typeof opts.outbox === 'string';
    this.outbox = typeof opts.outbox === 'string' ? new Outbox({ path: opts.outbox, maxEntries: opts.outboxMaxEntries }) : opts.outbox;
    this.backoff = new Backoff(opts.backoff);
    this.log = opts.logger ?? moduleLogger('link');
    this.now = opts.now ?? Date.now;
    this.elapsed = opts.monotonicNow ?? (() => performance.now());
    this.preferV4 = opts.protocolVersion === 4;
  }

  /** Opens the outbox and starts connecting; returns at once (connection is in the background). */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.ownsOutbox) this.outbox.start();
    const ackTimeoutMs = this.opts.ackTimeoutMs ?? 10_000;
    this.ackTimer = setInterval(() => this.checkAckTimeout(ackTimeoutMs), Math.max(50, ackTimeoutMs / 4));
    this.ackTimer.unref();
    this.connect();
  }

  /** Resolves once connected (or rejects after timeoutMs). */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.off('connect', on); reject(new LinkError(`Not connected to ${this.opts.url} within ${timeoutMs} ms; check the URL, the device secret and the broker.`)); }, timeoutMs);
      const on = () => { clearTimeout(t); resolve(); };
      this.once('connect', on);
    });
  }

  /** Publishes the offline state, disconnects cleanly and closes the outbox. Safe twice. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.ackTimer);
    const client = this.client;
    this.client = undefined;
    this.generation += 1;
    if (client) {
      let answered = false;
      if (this.connected) {
        // A clean DISCONNECT suppresses the will (MQTT 5 §3.14.4), so say offline ourselves.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          client.publish(topics.state(this.deviceId), JSON.stringify(this.statePayload(false)), { qos: 1, retain: true }, (err) => {
            answered = !err;
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // Not connected, or the broker did not answer within the second (gone without closing the TCP
      // connection: a pulled cable): force. Otherwise mqtt.js waits for the PUBACKs of everything in
      // flight, from a broker that may never answer, and stop() (SIGTERM) hung until systemd killed it.
      await new Promise<void>((resolve) => client.end(!this.connected || !answered, {}, () => resolve()));
      client.removeAllListeners();
      client.on('error', () => undefined);
    }
    this.connected = false;
    this.inflight.clear();
    if (this.ownsOutbox) this.outbox.stop();
  }

  /** Validates the alert, appends it durably to the outbox and returns its id; delivery is async. */
  publishAlert(alert: AlertPayload): string {
    const r = alertValidator.check(alert);
    if (!r.ok) {
      const i = r.issues[0];
      throw new LinkError(`Alert ${alert.id ?? '?'} does not match the protocol: ${i?.path || '/'} expected ${i?.expected} but received ${i?.received}`);
    }
    const id = this.outbox.put({ id: alert.id, topic: topics.alert(this.deviceId), payload: (seq) => JSON.stringify({ ...r.value, seq }) });
    this.pump();
    return id;
  }

  /**
   * QoS 0; returns false (and counts) when offline, or when the message does not match the protocol
   * (logged once per field): the server would count and drop every such message, and the device
   * would look silent.
   */
  publishTelemetry(t: TelemetryPayload): boolean {
    if (!this.client || !this.connected) {
      this.telemetryDroppedOffline += 1;
      return false;
    }
    const r = telemetryValidator.check(t);
    if (!r.ok) {
      this.telemetryRefused += 1;
      const i = r.issues[0];
      const key = i?.path ?? '/';
      if (!this.telemetryRefusedPaths.has(key)) {
        this.telemetryRefusedPaths.add(key);
        this.log.error({ path: key, expected: i?.expected, received: i?.received }, 'telemetry does not match the protocol; not sent');
      }
      return false;
    }
    this.client.publish(topics.telemetry(this.deviceId), JSON.stringify(t), { qos: 0 });
    return true;
  }

  /**
   * The report's health carries the agent's own degraded reasons too (setHealthReasons): the server's
   * registry keeps the health of the last state or report, and an OTA report (resent at each connect,
   * after the state) said ok over a camera that was down.
   */
  publishReported(r: ReportedPayload): boolean {
    if (!this.client || !this.connected) return false;
    const own = [...this.healthReasons.values()].flat();
    const report = own.length ? { ...r, health: mergeHealth(r.health, own) } : r;
    this.client.publish(topics.reported(this.deviceId), JSON.stringify(report), { qos: 1, retain: true });
    return true;
  }

  publishCmdResult(r: CmdResultPayload): boolean {
    if (!this.client || !this.connected) return false;
    this.client.publish(topics.cmdRes(this.deviceId), JSON.stringify(r), { qos: 1 });
    return true;
  }

  /** Raw publish for modules that add topics (OTA); the broker ACL still confines it to the subtree. */
  publishRaw(topic: string, payload: Buffer | string, qos: 0 | 1 = 1): boolean {
    if (!this.client || !this.connected) return false;
    this.client.publish(topic, payload, { qos });
    return true;
  }

  status(): AgentLinkStatus {
    return {
      connected: this.connected,
      protocolVersion: this.version,
      connects: this.connects,
      outbox: this.outbox.stats(),
      telemetryDroppedOffline: this.telemetryDroppedOffline,
      telemetryRefused: this.telemetryRefused,
      resends: this.resends,
      refusedSubscriptions: [...this.refusedSubscriptions],
      inboundDropped: { ...this.inboundDropped },
    };
  }

  /**
   * Records why the agent is going down (a hung inference run, a camera that cannot start): the
   * offline state that stop() publishes then carries it as health `failed`, so the retained state says
   * why the device went offline, not only that it did. Call it before stop().
   */
  reportFailure(err: unknown): void {
    const e = describeError(err);
    const reason = `${e.code}: ${e.message.split('\n')[0]}`;
    this.failure = { status: 'failed', reasons: [capReason(reason)] };
  }

  /**
   * Sets what `source` (e.g. "cameras", "ota.publicKeyFile") finds wrong while the agent runs; an
   * empty list clears it. The online state's health is `degraded` with the reasons of every source
   * while any has one, `ok` otherwise; a change republishes the retained state at once when
   * connected (otherwise the next connect's state carries it). A camera down for the run showed only
   * in telemetry and the journal, and fleetctl device list and the dashboard, which read the state's
   * health, said ok.
   */
  setHealthReasons(source: string, reasons: readonly string[]): void {
    const next = reasons.map(capReason);
    const prev = this.healthReasons.get(source) ?? [];
    if (next.length === prev.length && next.every((r, i) => r === prev[i])) return;
    if (next.length) this.healthReasons.set(source, next);
    else this.healthReasons.delete(source);
    const h = this.health();
    this.log.info({ source, health: h.status, reasons: h.reasons.length }, 'health changed');
    if (this.client && this.connected) {
      this.client.publish(topics.state(this.deviceId), JSON.stringify(this.statePayload(true)), { qos: 1, retain: true });
    }
  }

  /** The agent's health while it runs: `degraded` with every source's reasons (setHealthReasons), or `ok`. */
  health(): NonNullable<StatePayload['health']> {
    return mergeHealth({ status: 'ok', reasons: [] }, [...this.healthReasons.values()].flat());
  }

  /**
   * Online: health ok, or degraded with the reasons set by setHealthReasons; either replaces the
   * failure of the previous run in the retained state and the server's registry (it keeps the last
   * health given). Offline: the failure reportFailure() recorded; none in the will (set at connect, it
   * cannot know why the connection will end).
   */
  private statePayload(online: boolean, opts: { will?: boolean } = {}): StatePayload {
    const health = online ? this.health() : opts.will ? undefined : this.failure;
    return { v: 1, online, ts: this.now(), ...this.opts.identity, ...(health ? { health } : {}) };
  }

  private connect(): void {
    if (!this.running) return;
    const gen = ++this.generation;
    const protocolVersion: 5 | 4 = this.preferV4 ? 4 : 5;
    const options: IClientOptions = {
      protocolVersion,
      username: this.deviceId,
      password: this.opts.secret,
      clientId: deviceClientId(this.deviceId),
      clean: true,
      keepalive: this.opts.keepaliveS ?? 30,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
      reconnectPeriod: 0,
      will: { topic: topics.state(this.deviceId), payload: Buffer.from(JSON.stringify(this.statePayload(false, { will: true }))), qos: 1, retain: true },
      ...(this.opts.caPem ? { ca: this.opts.caPem, rejectUnauthorized: true } : {}),
      ...(this.opts.servername ? { servername: this.opts.servername } : {}),
    };
    const client = mqtt.connect(this.opts.url, options);
    this.client = client;
    client.on('connect', () => {
      if (gen !== this.generation) return;
      this.connected = true;
      this.version = protocolVersion;
      this.connects += 1;
      this.backoff.reset();
      disableNagle(client);
      this.log.info({ url: this.opts.url, protocolVersion }, 'connected');
      client.publish(topics.state(this.deviceId), JSON.stringify(this.statePayload(true)), { qos: 1, retain: true });
      const wanted = [topics.ack(this.deviceId), topics.desired(this.deviceId), topics.cmd(this.deviceId), topicFor(this.deviceId, 'ota/chunk')];
      client.subscribe(wanted, { qos: 1 }, (err, granted) => {
        if (gen !== this.generation) return;
        // A refusal left the agent without receipts: every alert was resent at each timeout, forever,
        // with only a warning. An ACL refusal (SUBACK 0x80; mqtt.js reports it as an error carrying the
        // SUBACK) is an error to fix on the broker, said once per connect; any other failure reconnects,
        // which subscribes again.
        const codes = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted ?? granted?.map((g) => g.qos) ?? [];
        const refused = wanted.filter((_, i) => (codes[i] ?? 0) >= 0x80);
        this.refusedSubscriptions = refused;
        if (err && refused.length === 0) {
          this.log.error({ err: describeError(err) }, 'subscribe failed; reconnecting');
          client.end(true);
        } else if (refused.length) {
          this.log.error({ refused }, `the broker refuses these subscriptions (check its ACL for ${this.deviceId})${refused.includes(topics.ack(this.deviceId)) ? ': no alert can be receipted, each is resent at every receipt timeout' : ''}`);
        }
      });
      this.inflight.clear();
      this.cursorSeq = 0;
      this.emit('connect', { protocolVersion });
      this.pump();
    });
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err: Error & { code?: number }) => {
      if (gen !== this.generation) return;
      // CONNACK 1 (3.1.1 "unacceptable protocol version") or 0x84 (MQTT 5 "unsupported protocol version").
      if (this.opts.protocolVersion !== 5 && !this.preferV4 && (err.code === 1 || err.code === 0x84)) {
        this.log.info('broker refused MQTT 5; falling back to MQTT 3.1.1');
        this.preferV4 = true;
        this.backoff.reset();
      } else {
        this.log.warn({ err: describeError(err) }, 'mqtt error');
      }
    });
    client.on('close', () => {
      if (gen !== this.generation) return;
      const was = this.connected;
      this.connected = false;
      this.inflight.clear();
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      if (was) this.emit('disconnect', { reason: 'closed' });
      if (!this.running) return;
      const delayMs = this.preferV4 && this.backoff.attempts === 0 && this.version === undefined ? 0 : this.backoff.nextDelayMs();
      this.retryTimer = setTimeout(() => this.connect(), delayMs);
    });
  }

  /** Publishes pending outbox entries in order while the in-flight window has room. */
  private pump(): void {
    const client = this.client;
    if (!client || !this.connected) return;
    const window = this.opts.inflightWindow ?? 16;
    if (this.inflight.size >= window) return;
    const entries = this.outbox.peek(window - this.inflight.size, this.cursorSeq);
    for (const e of entries) {
      this.cursorSeq = e.seq;
      this.send(client, e.id, e.topic, e.payload);
    }
  }

  /**
   * The PUBACK is not the receipt (see the header), but the receipt timeout starts there: on a slow
   * uplink a 200 KB snapshot takes seconds to send, and timing it from the hand-off resent the whole
   * window while the first copies were still queued (2.8× the bytes at 500 kbit/s). A failed publish
   * starts it too, so the timeout resends.
   */
  private send(client: MqttClient, id: string, topic: string, payload: Buffer): void {
    const f = { topic, payload, handedAt: this.elapsed(), takenAt: undefined as number | undefined };
    this.inflight.set(id, f);
    client.publish(topic, payload, { qos: 1 }, () => { if (this.inflight.get(id) === f) f.takenAt = this.elapsed(); });
  }

  private onAck(ids: string[]): void {
    for (const id of ids) {
      if (this.running && this.outbox.ack(id)) this.emit('delivered', { id });
      this.inflight.delete(id);
    }
    this.pump();
  }

  /**
   * Resends, in outbox order, each alert the broker took `ackTimeoutMs` ago without a receipt from
   * the server (a broker that acknowledged and lost it). One still being sent is not resent (it would
   * only queue again behind itself), unless no PUBACK came within 10 timeouts on a live connection.
   */
  private checkAckTimeout(ackTimeoutMs: number): void {
    const client = this.client;
    if (!client || !this.connected || this.inflight.size === 0) return;
    const now = this.elapsed();
    const due = [...this.inflight].filter(([, f]) => (f.takenAt !== undefined ? now - f.takenAt >= ackTimeoutMs : now - f.handedAt >= 10 * ackTimeoutMs));
    if (due.length === 0) return;
    this.resends += 1;
    this.log.info({ resent: due.length, inflight: this.inflight.size }, 'no receipt from the server in time; resending those alerts');
    for (const [id, f] of due) this.send(client, id, f.topic, f.payload);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === topicFor(this.deviceId, 'ota/chunk')) {
      this.emit('ota', { topic, payload });
      return;
    }
    const kind = topic === topics.ack(this.deviceId) ? 'ack' : topic === topics.desired(this.deviceId) ? 'desired' : topic === topics.cmd(this.deviceId) ? 'cmd' : undefined;
    if (!kind) return;
    const d = decodePayload(kind, payload);
    if (!d.ok) {
      const key = `${kind}:${d.reason}`;
      this.inboundDropped[key] = (this.inboundDropped[key] ?? 0) + 1;
      if (this.inboundDropped[key] === 1) this.log.warn({ kind, reason: d.reason, detail: d.detail }, 'dropped bad inbound payload (logged once per kind)');
      return;
    }
    if (kind === 'ack') this.onAck((d.value as AckPayload).ids);
    else if (kind === 'desired') this.emit('desired', d.value as DesiredPayload);
    else this.emit('cmd', d.value as CmdPayload);
  }
}

/** HealthSchema (protocol/payloads.ts): at most 16 reasons of at most 200 characters each. */
const MAX_REASONS = 16;
const MAX_REASON_CHARS = 200;

/** A reason on one line, cut to the protocol's length with an ellipsis. */
function capReason(reason: string): string {
  const line = reason.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > MAX_REASON_CHARS ? `${line.slice(0, MAX_REASON_CHARS - 1)}…` : line;
}

/**
 * `base` with `extra` reasons added: degraded at least (a failed base stays failed), the reasons
 * within the protocol's 16, the last one saying how many more did not fit (the journal has them all).
 */
function mergeHealth(base: NonNullable<StatePayload['health']>, extra: readonly string[]): NonNullable<StatePayload['health']> {
  if (extra.length === 0) return base;
  const all = [...base.reasons, ...extra];
  const reasons = all.length <= MAX_REASONS ? all : [...all.slice(0, MAX_REASONS - 1), `and ${all.length - MAX_REASONS + 1} more (see the agent's journal)`];
  return { status: base.status === 'failed' ? 'failed' : 'degraded', reasons };
}
