/**
 * The fleet server's OTA side in one place: signing key, model registry, desired state, chunk
 * server and rollout engine. FleetServer creates it after the database, routes `ota/...` device
 * messages to `handle()`, and registers its HTTP routes (api/ota-routes.ts).
 */
import type { Registry } from 'prom-client';
import type { Db } from '../db/database.js';
import type { DeviceStore } from '../db/devices.js';
import { TOPIC_ROOT } from '../../../agent/src/protocol/index.js';
import { loadOrCreateServerKey, type ServerKey } from '../keys/server-key.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { ChunkServer } from './chunk-server.js';
import { DesiredStore } from './desired-store.js';
import { RolloutStore } from '../rollouts/rollout-store.js';
import { RolloutEngine } from '../rollouts/rollout-engine.js';

/** Filter the server subscribes to for chunk requests (any device; the ACL keeps each in its subtree). */
export const OTA_REQUEST_FILTER = `${TOPIC_ROOT}/+/ota/req`;

export interface OtaServiceOptions {
  db: Db;
  dataDir: string;
  devices: DeviceStore;
  publish: (topic: string, payload: Buffer, opts: { qos: 0 | 1; retain?: boolean }) => boolean;
  rolloutTickMs?: number;
  now?: () => number;
  /** A rollout's state or a device's status in it changed (RolloutEngineOptions.onChange). */
  onRolloutChange?: (rolloutId: string) => void;
  /** Per-device limit on chunk requests (config `ota`); none when absent. */
  chunkRateLimit?: { perDeviceChunkRate: number; perDeviceChunkBurst: number };
  /** Prometheus registry (/metrics) for the chunk server's counters. */
  metrics?: Registry;
}

export class OtaService {
  readonly key: ServerKey;
  readonly registry: ModelRegistry;
  readonly desired: DesiredStore;
  readonly chunks: ChunkServer;
  readonly rollouts: RolloutEngine;
  readonly rolloutStore: RolloutStore;
  private started = false;

  readonly devices: DeviceStore;

  constructor(opts: OtaServiceOptions) {
    this.devices = opts.devices;
    this.key = loadOrCreateServerKey(opts.dataDir);
    this.registry = new ModelRegistry(opts.db, opts.dataDir, opts.now);
    this.desired = new DesiredStore(opts.db, (topic, payload) => { opts.publish(topic, payload, { qos: 1, retain: true }); }, opts.now);
    this.chunks = new ChunkServer({
      registry: this.registry,
      mayFetch: (deviceId, name, version) => this.desired.holds(deviceId, name, version),
      publish: (topic, payload) => { opts.publish(topic, payload, { qos: 1 }); },
      rateLimit: opts.chunkRateLimit,
      metrics: opts.metrics,
    });
    this.rolloutStore = new RolloutStore(opts.db, opts.now);
    this.rollouts = new RolloutEngine({
      store: this.rolloutStore, devices: opts.devices, registry: this.registry, desired: this.desired, tickMs: opts.rolloutTickMs, now: opts.now,
      onChange: opts.onRolloutChange,
    });
  }

  /** Republishes every desired state (retained messages of the embedded broker live in memory) and starts the rollout engine. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.desired.republishAll();
    this.rollouts.start();
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.rollouts.stop();
    this.chunks.stop();
  }

  handle(topic: string, payload: Buffer): void {
    this.chunks.handle(topic, payload);
  }
}
