/**
 * Fleet server configuration (JSON file given to `fleet-server serve --config`). One TypeBox schema
 * gives the type, the defaults and the validation.
 */
import { Type, type Static } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileSchema } from '../../../agent/src/util/schema.js';
import { ConfigError } from '../../../agent/src/util/errors.js';


export const FleetConfigSchema = Type.Object({
  dataDir: Type.String({ default: './data/fleet', description: 'SQLite database and generated files live here' }),
  /** SQLite file; several replicas may share one file on one host (WAL). Default <dataDir>/fleet.sqlite. */
  dbPath: Type.Optional(Type.String()),
  broker: Type.Object({
    mode: Type.Union([Type.Literal('embedded'), Type.Literal('external')], { default: 'embedded' }),
    embedded: Type.Object({
      engine: Type.Union([Type.Literal('aedes'), Type.Literal('mosquitto')], {
        default: 'aedes',
        description: 'aedes: in-process, MQTT 3.1.1 (agents fall back to it). mosquitto: Debian\'s mosquitto run and supervised by the fleet server, MQTT 5; needs a fixed port',
      }),
      mosquittoPath: Type.String({ default: '/usr/sbin/mosquitto', description: 'mosquitto binary for engine "mosquitto"' }),
      host: Type.String({ default: '0.0.0.0' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
      plaintextHost: Type.Optional(Type.String({
        description: 'where the plain MQTT listener (port) binds, when not at host: "127.0.0.1" with tls keeps device secrets off the network in clear (only TLS is reachable from outside)',
      })),
      tls: Type.Optional(Type.Object({
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883 }),
        certPath: Type.String(),
        keyPath: Type.String(),
      }, { additionalProperties: false })),
    }, { additionalProperties: false, default: {} }),
    external: Type.Optional(Type.Object({
      url: Type.String({ description: 'mqtt://host:port or mqtts://host:port' }),
      caPath: Type.Optional(Type.String()),
      username: Type.String({ default: 'svc.fleet-server' }),
      password: Type.String(),
      /** Distinct per replica: the broker keeps this session's queue while the replica is down. */
      clientId: Type.Optional(Type.String({ maxLength: 64 })),
      /**
       * Shared subscriptions ($share/fleet/...) so replicas split the ingest. Default: on with MQTT 5,
       * off with protocolVersion 4 (a 3.1.1 broker without $share accepts the subscription and delivers
       * nothing: alerts and telemetry were lost unseen). Set true for a 3.1.1 broker that has it (mosquitto).
       */
      shared: Type.Optional(Type.Boolean()),
      protocolVersion: Type.Union([Type.Literal(5), Type.Literal(4)], { default: 5 }),
    }, { additionalProperties: false })),
  }, { additionalProperties: false, default: {} }),
  http: Type.Object({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    /** Serve GET /metrics without a token (for a Prometheus on a trusted network). */
    publicMetrics: Type.Boolean({ default: false }),
    /**
     * Public origins of the dashboard (e.g. https://fleet.example.com) behind a proxy that rewrites
     * the Host header and sets no X-Forwarded-Host: a POST/PUT/DELETE with the session cookie from
     * any other origin than the server's own is refused (403 E_CROSS_ORIGIN).
     */
    allowedOrigins: Type.Array(Type.String({ pattern: '^https?://[^/?#]+$' }), { maxItems: 16, default: [] }),
    /**
     * Addresses or CIDRs of the reverse proxies in front of the API (e.g. ["127.0.0.1"], or
     * "loopback"): their requests' client address is read from X-Forwarded-For, so the login limits
     * count each client instead of the proxy (where one guesser kept every operator out). Default off.
     */
    trustProxy: Type.Array(Type.String({ pattern: '^(loopback|linklocal|uniquelocal|[0-9A-Fa-f:.]+(/[0-9.]+)?)$' }), { maxItems: 16, default: [] }),
  }, { additionalProperties: false, default: {} }),
  operator: Type.Object({
    username: Type.String({ default: 'admin', minLength: 1, maxLength: 64 }),
    /** Bootstrap password for the first start; when absent one is generated and printed once. */
    password: Type.Optional(Type.String({ minLength: 8 })),
    sessionTtlHours: Type.Number({ minimum: 0.01, default: 12 }),
  }, { additionalProperties: false, default: {} }),
  telemetry: Type.Object({
    retentionHours: Type.Number({ minimum: 0.001, default: 168 }),
    pruneIntervalS: Type.Number({ minimum: 1, default: 60 }),
  }, { additionalProperties: false, default: {} }),
  /**
   * Alerts are pruned with telemetry (every telemetry.pruneIntervalS): deleted after retentionHours,
   * their snapshots (most of the bytes) after snapshotRetentionHours. Kept forever, one device's
   * alerts with snapshots filled the server's disk.
   */
  alerts: Type.Object({
    retentionHours: Type.Number({ minimum: 0.001, default: 720 }),
    snapshotRetentionHours: Type.Number({ minimum: 0.001, default: 168 }),
  }, { additionalProperties: false, default: {} }),
  /**
   * Per-device limit on telemetry, alerts and command results (a token bucket per device): one
   * runaway or hostile device cannot flood the database. A dropped alert is not acknowledged, so
   * the agent's outbox sends it again later. State and reported updates have their own, smaller limit
   * (below), which keeps the newest of them.
   */
  ingest: Type.Object({
    perDeviceRate: Type.Number({ exclusiveMinimum: 0, default: 100, description: 'messages per second, sustained' }),
    perDeviceBurst: Type.Integer({ minimum: 1, default: 1000, description: 'messages at once' }),
    /**
     * State and reported updates (each) per device: past the limit only the newest is stored, once
     * the device is back within it; the ones it replaced are dropped and counted (reason `rate`).
     */
    perDeviceStateRate: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'state (and reported) updates per second, sustained' }),
    perDeviceStateBurst: Type.Integer({ minimum: 1, default: 50, description: 'state (and reported) updates at once' }),
  }, { additionalProperties: false, default: {} }),
  /**
   * Per-device limit on OTA chunk requests (ota/req; a token bucket per device, apart from ingest's):
   * each costs a read, a base64 encoding and a publish of up to 64 KiB. The agent asks for one chunk
   * at a time, about 300 a second at full speed on localhost: beyond the limit its request waits and
   * is answered when the budget allows (paced, not dropped). Only the newest waiting request of a
   * device is kept; each one it replaces is dropped and counted (/api/status ota.droppedBy.rate).
   */
  ota: Type.Object({
    perDeviceChunkRate: Type.Number({ exclusiveMinimum: 0, default: 100, description: 'chunk requests per second, sustained' }),
    perDeviceChunkBurst: Type.Integer({ minimum: 1, default: 200, description: 'chunk requests at once' }),
  }, { additionalProperties: false, default: {} }),
  /** When set, device changes rewrite these files and reload mosquitto with SIGHUP. */
  mosquitto: Type.Optional(Type.Object({
    passwordFile: Type.String(),
    aclFile: Type.String(),
    /** File holding mosquitto's pid (mosquitto.conf pid_file); without it no reload is sent. */
    pidFile: Type.Optional(Type.String()),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

export type FleetConfig = Static<typeof FleetConfigSchema>;

const validator = compileSchema(FleetConfigSchema);

/** Validates a config object (defaults applied). Throws ConfigError naming every wrong field. */
export function parseFleetConfig(value: unknown, what = 'fleet server config'): FleetConfig {
  const c = validator.parse(value ?? {}, what);
  if (c.broker.mode === 'external' && !c.broker.external) {
    throw new ConfigError(`${what}: broker.mode is "external" but broker.external is missing; give its url, username and password.`);
  }
  if (c.broker.mode === 'embedded' && c.broker.embedded.engine === 'mosquitto') {
    const e = c.broker.embedded;
    if (e.port === 0 || e.tls?.port === 0) {
      throw new ConfigError(`${what}: broker.embedded.engine is "mosquitto", which cannot listen on port 0; set broker.embedded.port${e.tls ? ' and broker.embedded.tls.port' : ''} (e.g. 1883${e.tls ? ' and 8883' : ''}).`);
    }
    if (c.mosquitto) {
      throw new ConfigError(`${what}: the "mosquitto" section is for an external mosquitto (broker.mode "external"); with broker.embedded.engine "mosquitto" the fleet server writes its files under dataDir/mosquitto. Remove the "mosquitto" section.`);
    }
  }
  return c;
}

export function loadFleetConfig(path: string | undefined): FleetConfig {
  if (!path) return parseFleetConfig({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Could not read the fleet server config ${path}: ${(err as Error).message}. Give a JSON file (see configs/fleet-server.example.json).`);
  }
  return parseFleetConfig(raw, path);
}

/** Whether the server subscribes with $share on an external broker (see `broker.external.shared`). */
export function sharedSubscriptions(x: { shared?: boolean; protocolVersion: 4 | 5 }): boolean {
  return x.shared ?? x.protocolVersion === 5;
}

export function dbPathOf(c: FleetConfig): string {
  return resolve(c.dbPath ?? join(c.dataDir, 'fleet.sqlite'));
}
