/**
 * Ingest from an external broker (mosquitto, EMQX, ...): one MQTT 5 client per replica with a
 * persistent session (clean start off, long session expiry, MQTT 5 §3.1.2.11.2) so the broker queues
 * QoS 1 messages while this replica restarts. Telemetry and alerts use shared subscriptions
 * (`$share/fleet/...`, MQTT 5 §4.8.2): the broker gives each message to one replica, so replicas
 * split the ingest; duplicates that still reach two replicas (agent resends) hit the same database
 * and are stored once.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { serverFilter } from '../../../agent/src/protocol/index.js';
import { describeError, EdgeFleetError } from '../../../agent/src/util/errors.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { disableNagle } from '../../../agent/src/util/tcp-nodelay.js';
import { INGEST_KINDS } from './ingest.js';

export interface ExternalSourceOptions {
  url: string;
  username: string;
  password: string;
  caPath?: string;
  clientId?: string;
  shared: boolean;
  protocolVersion: 5 | 4;
  /** Further filters (e.g. OTA chunk requests), subscribed with the ingest ones. */
  extraFilters?: string[];
  onMessage: (topic: string, payload: Buffer) => void;
  /**
   * After each reconnect (not the first connect), once subscribed: what the server published while
   * the connection was down was dropped, and a restarted broker may hold older retained messages.
   */
  onReconnect?: () => void;
  logger?: Logger;
}

export class ExternalSource {
  private client: MqttClient | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: ExternalSourceOptions) {
    this.log = opts.logger ?? moduleLogger('ingest-external');
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects and subscribes; resolves on the first successful subscription. */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.client) return;
    const o = this.opts;
    const client = mqtt.connect(o.url, {
      protocolVersion: o.protocolVersion,
      username: o.username,
      password: o.password,
      clientId: o.clientId ?? `fleet-server-${hostname()}`.slice(0, 64),
      clean: false,
      ...(o.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 7 * 24 * 3600 } } : {}),
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...(o.caPath ? { ca: readFileSync(o.caPath), rejectUnauthorized: true } : {}),
    });
    this.client = client;
    client.on('message', (topic, payload) => o.onMessage(topic, payload));
    client.on('error', (err) => this.log.warn({ err: describeError(err) }, 'external broker error'));
    const filters = Object.fromEntries([...INGEST_KINDS.map((k) => serverFilter(k.kind, o.shared && k.shared)), ...(o.extraFilters ?? [])].map((f) => [f, { qos: 1 as const }]));
    let connects = 0;
    const first = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new EdgeFleetError('E_BROKER', `No connection to the external broker ${o.url} within ${timeoutMs} ms; check broker.external (url, username, password).`)), timeoutMs);
      client.on('connect', (connack) => {
        disableNagle(client);
        // With a resumed session the broker keeps our subscriptions; subscribing again is harmless.
        if (connack.sessionPresent) this.log.info('resumed persistent session');
        const subscribe = () => client.subscribe(filters, (err, granted) => {
          const refused = (granted ?? []).filter((g) => g.qos >= 0x80);
          if (err || refused.length > 0) {
            this.log.error({ err: err ? describeError(err) : undefined, refused: refused.map((g) => g.topic) }, 'subscription refused; check the broker ACL for the service account');
            return;
          }
          clearTimeout(t);
          if (connects++ > 0) this.opts.onReconnect?.();
          resolve();
        });
        // mosquitto 2.0.11 restores a persistent session's shared subscriptions from its persistence
        // file in a state that delivers nothing (seen in test/integration/mqtt-outage.test.ts), so a
        // resumed session drops and renews its shared subscriptions; queued messages stay queued.
        const sharedFilters = Object.keys(filters).filter((f) => f.startsWith('$share/'));
        if (connack.sessionPresent && sharedFilters.length > 0) client.unsubscribe(sharedFilters, () => subscribe());
        else subscribe();
      });
    });
    await first;
  }

  /** Publishes from the server (receipts, desired state); false while disconnected. */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain?: boolean } = { qos: 1 }): boolean {
    const c = this.client;
    if (!c || !c.connected) return false;
    c.publish(topic, payload, { qos: opts.qos, retain: opts.retain ?? false });
    return true;
  }

  async stop(): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = undefined;
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }
}
