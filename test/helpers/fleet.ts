/**
 * In-process fleet for tests: a fleet server on port 0 with a temp data dir (embedded aedes, an
 * external mosquitto started by this helper, or 'mosquitto-embedded': the fleet server's own
 * supervised mosquitto), device registration, agent links, an authenticated
 * HTTP client, and cleanup. Later tests (OTA, dashboard) reuse it:
 *
 *   const fleet = await startFleet({ broker: 'aedes' });
 *   const dev = fleet.addDevice('cam-01');
 *   const link = fleet.agentLink(dev);           // started, connected
 *   await fleet.api('GET', '/api/devices');
 *   await fleet.stop();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFleetConfig, type FleetConfig } from '../../fleet-server/src/config/schema.js';
import { FleetServer, type FleetServerOptions } from '../../fleet-server/src/server/fleet-server.js';
import { AgentLink, type AgentLinkOptions } from '../../agent/src/link/agent-link.js';
import { TestMosquitto } from './mosquitto.js';
import { freePort } from './wait.js';
import { binaryEntry } from './cli.js';

export type BrokerKind = 'aedes' | 'mosquitto' | 'mosquitto-embedded';

export interface StartFleetOptions {
  broker?: BrokerKind;
  /** Reuse a data dir (e.g. a second replica on the same SQLite file). */
  dir?: string;
  /** Reuse a running mosquitto (second replica). */
  mosquitto?: TestMosquitto;
  /** Client id of this replica's session at the external broker. */
  replicaId?: string;
  tls?: { certPath: string; keyPath: string };
  config?: Partial<FleetConfig>;
  extendApi?: FleetServerOptions['extendApi'];
}

export interface TestDevice {
  id: string;
  secret: string;
}

export const SERVICE_PASSWORD = 'test-service-password';
export const OPERATOR_PASSWORD = 'test-operator-password';

export class TestFleet {
  private readonly links: AgentLink[] = [];
  private token: string | undefined;
  private ownsDir: boolean;
  private ownsMosquitto: boolean;

  constructor(readonly server: FleetServer, readonly dir: string, readonly broker: BrokerKind, readonly mosquitto: TestMosquitto | undefined, owns: { dir: boolean; mosquitto: boolean }) {
    this.ownsDir = owns.dir;
    this.ownsMosquitto = owns.mosquitto;
  }

  /** URL agents connect to. */
  get mqttUrl(): string {
    return this.mosquitto ? this.mosquitto.url : `mqtt://127.0.0.1:${this.server.mqttPort!}`;
  }

  get mqttsUrl(): string | undefined {
    const p = this.server.mqttsPort;
    return p === undefined ? undefined : `mqtts://127.0.0.1:${p}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.server.api.port}`;
  }

  addDevice(id: string): TestDevice {
    return { id, secret: this.server.addDevice(id).secret };
  }

  /** Creates (not starts) an agent link for a device; stopped by stop(). */
  agentLink(dev: TestDevice, opts: Partial<AgentLinkOptions> = {}): AgentLink {
    const link = new AgentLink({
      deviceId: dev.id,
      secret: dev.secret,
      url: this.mqttUrl,
      outbox: join(this.dir, 'agents', dev.id, 'outbox.sqlite'),
      backoff: { initialMs: 100, maxMs: 1000 },
      ackTimeoutMs: 2000,
      identity: { agentVersion: 'test', platform: { os: 'linux', arch: process.arch } },
      ...opts,
    });
    this.links.push(link);
    return link;
  }

  async login(): Promise<string> {
    if (this.token) return this.token;
    const res = await fetch(`${this.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: OPERATOR_PASSWORD }) });
    if (!res.ok) throw new Error(`login failed: HTTP ${res.status}`);
    this.token = ((await res.json()) as { token: string }).token;
    return this.token;
  }

  /** Authenticated JSON call; returns status and body. */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const token = await this.login();
    const res = await fetch(`${this.httpUrl}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { parsed = text; }
    return { status: res.status, body: parsed as T };
  }

  async stop(): Promise<void> {
    for (const l of this.links) await l.stop();
    await this.server.stop();
    if (this.ownsMosquitto) await this.mosquitto?.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startFleet(opts: StartFleetOptions = {}): Promise<TestFleet> {
  const broker = opts.broker ?? 'aedes';
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ef-fleet-'));
  let mosquitto = opts.mosquitto;
  const ownsMosquitto = broker === 'mosquitto' && !mosquitto;
  const base: Record<string, unknown> = {
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    operator: { username: 'admin', password: OPERATOR_PASSWORD },
    telemetry: { retentionHours: 1, pruneIntervalS: 3600 },
  };
  if (broker === 'aedes') {
    base.broker = { mode: 'embedded', embedded: { host: '127.0.0.1', port: 0, ...(opts.tls ? { tls: { port: 0, ...opts.tls } } : {}) } };
  } else if (broker === 'mosquitto-embedded') {
    base.broker = { mode: 'embedded', embedded: { engine: 'mosquitto', host: '127.0.0.1', port: await freePort(), ...(opts.tls ? { tls: { port: await freePort(), ...opts.tls } } : {}) } };
  } else {
    if (!mosquitto) {
      mosquitto = new TestMosquitto({ dir });
    }
    base.mosquitto = { passwordFile: mosquitto.passwordFile, aclFile: mosquitto.aclFile, pidFile: mosquitto.pidFile };
    base.broker = { mode: 'external', external: { url: '', username: 'svc.fleet-server', password: SERVICE_PASSWORD, clientId: opts.replicaId ?? 'fleet-test-a', shared: true, protocolVersion: 5 } };
  }
  const config = parseFleetConfig({ ...base, ...opts.config });
  if (mosquitto && ownsMosquitto) {
    // Write the service account before mosquitto first reads its files.
    const { syncMosquitto } = await import('../../fleet-server/src/mosquitto/files.js');
    syncMosquitto({ passwordFile: mosquitto.passwordFile, aclFile: mosquitto.aclFile }, [], [{ username: 'svc.fleet-server', password: SERVICE_PASSWORD }]);
    await mosquitto.start();
  }
  if (mosquitto) config.broker.external!.url = mosquitto.url;
  const server = new FleetServer({ config, extendApi: opts.extendApi });
  await server.start();
  return new TestFleet(server, dir, broker, mosquitto, { dir: opts.dir === undefined, mosquitto: ownsMosquitto });
}

export interface ReplicaProcess {
  httpUrl: string;
  /** GET /api/status of the replica (ingest and broker counters). */
  status(): Promise<{ ingest: { alertsStored: number; alertsDuplicate: number; dropped: number } }>;
  stop(): Promise<number | null>;
}

/**
 * A second fleet-server as a real `fleet-server serve` process on the same mosquitto and the same
 * SQLite file as `fleet` (which must use broker 'mosquitto'): horizontal scale as deployed.
 */
export async function spawnReplica(fleet: TestFleet, replicaId: string): Promise<ReplicaProcess> {
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const m = fleet.mosquitto;
  if (!m) throw new Error('spawnReplica needs a fleet on mosquitto');
  const configPath = join(fleet.dir, `replica-${replicaId}.json`);
  writeFileSync(configPath, JSON.stringify({
    dataDir: fleet.dir,
    broker: { mode: 'external', external: { url: m.url, username: 'svc.fleet-server', password: SERVICE_PASSWORD, clientId: replicaId, shared: true, protocolVersion: 5 } },
    http: { host: '127.0.0.1', port: 0 },
    operator: { username: 'admin', password: OPERATOR_PASSWORD },
  }));
  const child = spawn(process.execPath, [binaryEntry('fleet-server'), 'serve', '--config', configPath, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const { waitFor } = await import('./wait.js');
  const line = await waitFor(`replica ${replicaId} ready`, () => {
    if (child.exitCode !== null) throw new Error(`replica ${replicaId} exited with ${child.exitCode}`);
    return out.split('\n').find((l) => l.startsWith('{'));
  }, 30_000, 50);
  const httpUrl = `http://127.0.0.1:${(JSON.parse(line) as { http: number }).http}`;
  let token: string | undefined;
  return {
    httpUrl,
    async status() {
      if (!token) {
        const r = await fetch(`${httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: OPERATOR_PASSWORD }) });
        token = ((await r.json()) as { token: string }).token;
      }
      return (await (await fetch(`${httpUrl}/api/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as Awaited<ReturnType<ReplicaProcess['status']>>;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function alertFixture(id: string, overrides: Record<string, unknown> = {}) {
  return {
    v: 1 as const, id, ts: Date.now(), camera: 'cam0', rule: 'zone-door', ruleKind: 'zone-enter', trackId: 7,
    class: 'person', score: 0.91, box: { x: 10, y: 20, w: 30, h: 60 }, zone: 'door', ...overrides,
  };
}
