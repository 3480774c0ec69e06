/**
 * The fleet server process core: database, broker (embedded aedes, its own mosquitto, or an
 * external broker), ingest, HTTP API, telemetry retention and the mosquitto file sync. `serve` wraps it; tests run it in-process
 * (test/helpers/fleet.ts).
 */
import { randomToken } from '../db/credentials.js';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError, describeError, invalidConfig, type ConfigIssue } from '../../../agent/src/util/errors.js';
import { existsSync, statSync } from 'node:fs';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { coalesce } from '../../../agent/src/util/coalesce.js';
import { SHARE_GROUP, serverFilter } from '../../../agent/src/protocol/index.js';
import { dbPathOf, sharedSubscriptions, type FleetConfig } from '../config/schema.js';
import { openDatabase, type Db } from '../db/database.js';
import { DeviceStore } from '../db/devices.js';
import { TelemetryStore } from '../db/telemetry.js';
import { AlertStore } from '../db/alerts.js';
import { OperatorStore } from '../db/operators.js';
import { EmbeddedBroker } from '../broker/embedded.js';
import { ExternalSource } from '../ingest/external-source.js';
import { INGEST_KINDS, Ingest } from '../ingest/ingest.js';
import { AckPublisher } from '../ingest/acks.js';
import { HttpApi, requestToken } from '../api/http-api.js';
import { MosquittoSync } from '../mosquitto/sync-target.js';
import { ManagedMosquitto, managedMosquittoFiles, managedServiceSecret, SERVICE_USERNAME } from '../broker/managed-mosquitto.js';
import { FleetEventBus } from '../dashboard/event-bus.js';
import { Dashboard } from '../dashboard/dashboard.js';
import { OTA_REQUEST_FILTER, OtaService } from '../ota/ota-service.js';
import { registerOtaRoutes } from '../api/ota-routes.js';

export interface FleetServerOptions {
  config: FleetConfig;
  now?: () => number;
  logger?: Logger;
  /** Lets later modules (OTA, dashboard) add authenticated routes. */
  extendApi?: (app: FastifyInstance, auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>) => void | Promise<void>;
  /** Rollout engine tick (default 1000 ms). */
  rolloutTickMs?: number;
}

/** A port already taken, named by its config field (the cause keeps the errno for callers that retry elsewhere). */
function startError(err: unknown, c: FleetConfig): unknown {
  const inUse = (e: unknown): NodeJS.ErrnoException | undefined => {
    const x = e as NodeJS.ErrnoException & { cause?: unknown } | undefined;
    return x?.code === 'EADDRINUSE' ? x : x?.cause ? inUse(x.cause) : undefined;
  };
  const e = inUse(err);
  if (!e) return err;
  const port = (e as { port?: number }).port;
  const field = port === c.http.port ? '/http/port' : port === c.broker.embedded.tls?.port ? '/broker/embedded/tls/port' : '/broker/embedded/port';
  // Debian's mosquitto package enables its own service on 1883, the embedded broker's default port.
  const debian = field === '/broker/embedded/port' && port === 1883 ? ' (Debian\'s mosquitto.service listens there once mosquitto is installed: sudo systemctl disable --now mosquitto)' : '';
  return new ConfigError(`${field} ${port ?? ''} is in use by another program${debian} (${e.message}); stop it or choose another port`, [{ path: field, expected: 'a free port', received: String(port) }], { cause: err });
}

export class FleetServer {
  readonly config: FleetConfig;
  readonly registry = new Registry();
  db!: Db;
  devices!: DeviceStore;
  telemetry!: TelemetryStore;
  alerts!: AlertStore;
  operators!: OperatorStore;
  ingest!: Ingest;
  broker: EmbeddedBroker | undefined;
  /** The supervised mosquitto child (broker.embedded.engine "mosquitto"). */
  mosquitto: ManagedMosquitto | undefined;
  external: ExternalSource | undefined;
  api!: HttpApi;
  acks!: AckPublisher;
  /** Stored device messages and rollout changes as events (the dashboard's live stream). */
  readonly events = new FleetEventBus();
  dashboard!: Dashboard;
  /** Signing key, model registry, desired state, chunk server, rollouts. */
  ota!: OtaService;
  /** Set when the first start generated the operator password (printed once). */
  bootstrapPassword: string | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private pruneTimer: NodeJS.Timeout | undefined;
  private started = false;
  private mosquittoFiles: MosquittoSync | undefined;

  constructor(private readonly opts: FleetServerOptions) {
    this.config = opts.config;
    this.log = opts.logger ?? moduleLogger('fleet-server');
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      this.checkFiles();
      await this.startParts();
    } catch (err) {
      // Nothing half-started stays behind (a mosquitto child would outlive this process).
      await this.stop().catch(() => undefined);
      throw startError(err, this.config);
    }
  }

  /** Files the config names, checked before anything starts (a missing TLS key surfaced as a bare ENOENT). */
  private checkFiles(): void {
    const c = this.config;
    const issues: ConfigIssue[] = [];
    const tls = c.broker.mode === 'embedded' ? c.broker.embedded.tls : undefined;
    if (tls) {
      for (const [field, path] of [['certPath', tls.certPath], ['keyPath', tls.keyPath]] as const) {
        if (!existsSync(path)) issues.push({ path: `/broker/embedded/tls/${field}`, expected: 'an existing PEM file', received: path });
      }
    }
    if (c.broker.mode === 'external' && c.broker.external?.caPath && !existsSync(c.broker.external.caPath)) {
      issues.push({ path: '/broker/external/caPath', expected: 'an existing PEM file', received: c.broker.external.caPath });
    }
    const db = dbPathOf(c);
    if (existsSync(db) && statSync(db).isDirectory()) issues.push({ path: c.dbPath ? '/dbPath' : '/dataDir', expected: 'a SQLite file path, not a directory', received: db });
    if (issues.length) {
      throw invalidConfig('fleet server config', issues);
    }
  }

  private async startParts(): Promise<void> {
    const c = this.config;
    // New for each start: one closed by stop() signals at once.
    this.mosquittoFiles = new MosquittoSync(c, { onError: (err) => this.log.error({ err: describeError(err) }, 'mosquitto reload failed') });
    this.db = openDatabase(dbPathOf(c));
    this.devices = new DeviceStore(this.db, this.now);
    this.telemetry = new TelemetryStore(this.db, this.now);
    this.alerts = new AlertStore(this.db, this.now);
    this.operators = new OperatorStore(this.db, this.now);
    this.bootstrapOperator();
    collectDefaultMetrics({ register: this.registry, prefix: 'ef_fleet_' });
    const devices = this.devices;
    new Gauge({
      name: 'ef_devices_online', help: 'Devices whose retained state says online', registers: [this.registry],
      collect() { this.set(devices.list().filter((d) => d.online).length); },
    });
    this.acks = new AckPublisher((topic, payload) => { this.publish(topic, payload); });
    this.ingest = new Ingest({
      devices: this.devices, telemetry: this.telemetry, alerts: this.alerts, registry: this.registry,
      onAlertReceipt: (deviceId, id) => this.acks.add(deviceId, id),
      onStored: (kind, deviceId, value) => this.events.fromIngest(kind, deviceId, value),
      rateLimit: c.ingest,
      stateRateLimit: c.ingest,
    });
    this.ota = new OtaService({
      db: this.db, dataDir: c.dataDir, devices: this.devices, rolloutTickMs: this.opts.rolloutTickMs, now: this.now,
      publish: (topic, payload, o) => this.publish(topic, payload, o),
      onRolloutChange: (rolloutId) => this.events.publish({ type: 'rollout', rolloutId }),
      chunkRateLimit: c.ota,
      metrics: this.registry,
    });
    const onMessage = (topic: string, payload: Buffer) => (topic.endsWith('/ota/req') ? this.ota.handle(topic, payload) : this.ingest.handle(topic, payload));
    // Back on the broker after an outage (a restarted mosquitto, a network cut): every device's desired
    // state again. Desired states set meanwhile were dropped, and a mosquitto restored from its
    // persistence file held older retained ones: devices went back to the model before.
    // At most once every 30 s: a flapping link would otherwise send every device's desired state at
    // each reconnect (reconnectPeriod 1 s). The first reconnect republishes at once.
    const republish = coalesce(() => {
      const n = this.ota.desired.republishAll();
      this.log.info({ devices: n }, 'broker connection back: desired states republished');
    }, 30_000);
    if (c.broker.mode === 'embedded' && c.broker.embedded.engine === 'mosquitto') {
      const e = c.broker.embedded;
      const files = managedMosquittoFiles(c.dataDir);
      this.syncMosquitto();
      this.mosquitto = new ManagedMosquitto({ host: e.host, port: e.port, plainHost: e.plaintextHost, tls: e.tls, binary: e.mosquittoPath, files });
      await this.mosquitto.start();
      // One server on its own broker: no shared subscriptions; a persistent session keeps QoS 1
      // device messages queued at mosquitto while the fleet server restarts.
      this.external = new ExternalSource({
        url: this.mosquitto.localUrl, username: SERVICE_USERNAME, password: managedServiceSecret(files), clientId: 'fleet-server',
        shared: false, protocolVersion: 5, onMessage, extraFilters: [OTA_REQUEST_FILTER], onReconnect: republish,
      });
      await this.external.start();
    } else if (c.broker.mode === 'embedded') {
      const e = c.broker.embedded;
      this.broker = new EmbeddedBroker({
        host: e.host, port: e.port, plainHost: e.plaintextHost, tls: e.tls, devices: this.devices, onMessage,
        filters: [...INGEST_KINDS.map((k) => serverFilter(k.kind, false)), OTA_REQUEST_FILTER],
      });
      await this.broker.start();
    } else {
      const x = c.broker.external!;
      const shared = sharedSubscriptions(x);
      if (x.protocolVersion === 4 && x.shared === undefined) {
        // The default changed: replicas on a 3.1.1 broker with $share now each take every message.
        this.log.warn('broker.external.protocolVersion is 4 and broker.external.shared is not set: shared subscriptions are off, so several replicas would each store every message; set shared to true if the broker has $share (mosquitto does), or false to keep this quiet');
      }
      this.external = new ExternalSource({
        url: x.url, username: x.username, password: x.password, caPath: x.caPath, clientId: x.clientId,
        shared, protocolVersion: x.protocolVersion, onMessage, onReconnect: republish,
        extraFilters: [shared ? `$share/${SHARE_GROUP}/${OTA_REQUEST_FILTER}` : OTA_REQUEST_FILTER],
      });
      await this.external.start();
    }
    this.dashboard = new Dashboard({
      bus: this.events, devices: this.devices, telemetry: this.telemetry, alerts: this.alerts, groupsOf: (id) => this.ota.rolloutStore.groupsOf(id),
      sessionValid: (req) => { const t = requestToken(req); return t !== '' && this.operators.authenticate(t) !== undefined; },
    });
    this.api = new HttpApi({
      host: c.http.host, port: c.http.port, devices: this.devices, telemetry: this.telemetry, alerts: this.alerts,
      operators: this.operators, registry: this.registry, sessionTtlMs: c.operator.sessionTtlHours * 3600_000,
      publicMetrics: c.http.publicMetrics, allowedOrigins: c.http.allowedOrigins, trustProxy: c.http.trustProxy, status: () => this.status(), onDevicesChanged: (changed) => this.onDevicesChanged(changed),
      onLogout: () => this.dashboard.events.revalidate(),
      groupMembers: (group) => this.ota.rolloutStore.groupMembers(group),
      extendPublic: (app) => this.dashboard.registerPublic(app),
      extend: async (app, auth) => {
        this.dashboard.registerApi(app);
        registerOtaRoutes(app, auth, this.ota);
        await this.opts.extendApi?.(app, auth);
      },
    });
    await this.api.start();
    this.ota.start();
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), c.telemetry.pruneIntervalS * 1000);
    this.pruneTimer.unref();
    if (c.mosquitto) this.onDevicesChanged();
    this.log.info({ http: this.api.port, mqtt: this.mqttPort, mqtts: this.mqttsPort, external: c.broker.external?.url }, 'fleet server started');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearInterval(this.pruneTimer);
    this.ota?.stop();
    this.acks?.stop();
    await this.api?.stop();
    // After the API: a device added by a request still in flight is written and reloaded too. The
    // managed mosquitto is stopped next and reads the files when it starts: no wait for it.
    await this.mosquittoFiles?.close(this.mosquitto ? 0 : 5000);
    await this.broker?.stop();
    await this.external?.stop();
    await this.mosquitto?.stop();
    this.ingest?.stop();
    this.db?.close();
  }

  /** Port of the broker this server runs (aedes or its mosquitto); undefined on an external broker. */
  get mqttPort(): number | undefined {
    return this.broker?.port ?? this.mosquitto?.port;
  }

  get mqttsPort(): number | undefined {
    return this.broker?.tlsPort ?? this.mosquitto?.tlsPort;
  }

  /** Publishes from the server to a device topic through whichever broker is in use. */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain?: boolean } = { qos: 1 }): boolean {
    if (this.broker) return this.broker.publish(topic, payload, opts.qos, opts.retain);
    return this.external?.publish(topic, payload, opts) ?? false;
  }

  /** Registers a device; returns its secret (shown once). Syncs mosquitto when configured. */
  addDevice(id: string, opts: { rotate?: boolean } = {}): { secret: string } {
    const r = this.devices.add(id, opts);
    this.onDevicesChanged(opts.rotate ? id : undefined);
    return { secret: r.secret };
  }

  status(): Record<string, unknown> {
    return {
      broker: this.broker ? { mode: 'embedded', engine: 'aedes', running: this.broker.running, port: this.broker.port, tlsPort: this.broker.tlsPort, clients: this.broker.connectedClients(), ...this.broker.counters }
        : this.mosquitto ? { mode: 'embedded', engine: 'mosquitto', running: this.mosquitto.running, port: this.mosquitto.port, tlsPort: this.mosquitto.tlsPort, restarts: this.mosquitto.restarts, connected: this.external?.connected ?? false }
          : { mode: 'external', connected: this.external?.connected ?? false },
      ingest: this.ingest.getStats(),
      // Chunk requests served, refused (not desired, not found) and dropped (malformed, or over the device's
      // limit: droppedBy.rate): OTA has its own subscription, apart from ingest.
      ota: { ...this.ota.chunks.stats, droppedBy: { ...this.ota.chunks.stats.droppedBy } },
      devices: this.devices.list().length,
    };
  }

  /** Rewrites mosquitto's files and reloads it; no-op unless the config uses mosquitto files. */
  syncMosquitto(): boolean {
    return this.mosquittoFiles?.sync(this.devices.credentials()) ?? false;
  }

  /** `changed`: a device whose secret was rotated or which was removed; its live aedes sessions end (mosquitto drops them on reload). */
  private onDevicesChanged(changed?: string): void {
    if (changed) this.broker?.disconnectDevice(changed);
    try {
      this.syncMosquitto();
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'mosquitto sync failed');
    }
  }

  private prune(): void {
    const n = this.telemetry.prune(this.config.telemetry.retentionHours * 3600_000);
    if (n > 0) this.log.debug({ deleted: n }, 'telemetry pruned');
    const a = this.alerts.prune(this.config.alerts.retentionHours * 3600_000, this.config.alerts.snapshotRetentionHours * 3600_000);
    if (a.alerts + a.snapshots > 0) this.log.info(a, 'alerts pruned (alerts deleted, snapshots dropped)');
  }

  private bootstrapOperator(): void {
    if (this.operators.count() > 0) return;
    const c = this.config.operator;
    const password = c.password ?? randomToken(12);
    this.operators.setPassword(c.username, password);
    if (!c.password) {
      this.bootstrapPassword = password;
      process.stderr.write(`fleet-server: created operator '${c.username}' with password ${password} (shown once; set operator.password in the config to choose it)\n`);
    }
  }
}
