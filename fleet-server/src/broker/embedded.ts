/**
 * The fleet server's embedded broker: aedes over TCP and, when configured, TLS.
 *
 * aedes 1.x speaks MQTT 3.1.0 and 3.1.1 only (lib/handlers/connect.js refuses protocol levels above
 * 4 with CONNACK 1). Agents therefore negotiate: MQTT 5 first, 3.1.1 on refusal (AgentLink
 * `protocolVersion: 'auto'`). Nothing in the protocol depends on MQTT 5 features between an agent and
 * this broker; shared subscriptions only matter with an external broker (mosquitto) and several
 * replicas, and there the fleet server speaks MQTT 5.
 *
 * Authentication: username = device id, password = device secret (PBKDF2 hash in the registry), or
 * the in-process service account. Authorization: broker/acl.ts. The fleet server's own ingest
 * subscribes in-process (`aedes.subscribe`) before the listeners open, so no device message can
 * arrive before the server listens, even right after a broker restart.
 */
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { createServer, type Server, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { describeError, EdgeFleetError } from '../../../agent/src/util/errors.js';
import type { DeviceStore } from '../db/devices.js';
import { MAX_PACKET_REMAINING_LENGTH, devicePublishRefusal, devicesMayPublish, devicesMaySubscribe } from './acl.js';
import { guardPacketSize } from './packet-guard.js';
import { DEVICE_CLIENT_PREFIX, deviceClientId } from '../../../agent/src/protocol/topics.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** Where the plain listener binds, when not at `host` (e.g. 127.0.0.1 with TLS: only TLS from outside). */
  plainHost?: string;
  tls?: { port: number; certPath: string; keyPath: string };
  devices: DeviceStore;
  /** Called for every message on the device tree, in-process. */
  onMessage: (topic: string, payload: Buffer) => void;
  /** Filters the in-process ingest subscribes to. */
  filters: string[];
  logger?: Logger;
}

export interface BrokerCounters {
  authFailures: number;
  /** Connections closed for a packet over MAX_PACKET_REMAINING_LENGTH (or a malformed length). */
  oversizePackets: number;
  publishDenied: number;
  subscribeDenied: number;
}

type AuthedClient = Client & { efDeviceId?: string };

export class BrokerError extends EdgeFleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_BROKER', message, options);
  }
}

export class EmbeddedBroker {
  private aedes: Aedes | undefined;
  private tcp: Server | undefined;
  private tlsServer: TlsServer | undefined;
  /** Every accepted socket, so stop() can close them all (server.close() waits for open ones). */
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger;
  /** Actual ports after start (a configured 0 becomes the picked port and is kept for restarts). */
  port: number;
  tlsPort: number | undefined;
  readonly counters: BrokerCounters = { authFailures: 0, oversizePackets: 0, publishDenied: 0, subscribeDenied: 0 };

  constructor(private readonly opts: EmbeddedBrokerOptions) {
    this.log = opts.logger ?? moduleLogger('broker');
    this.port = opts.port;
    this.tlsPort = opts.tls?.port;
  }

  get running(): boolean {
    return this.aedes !== undefined;
  }

  /** The address the plain listener is bound to (undefined while stopped). */
  get plainAddress(): string | undefined {
    return (this.tcp?.address() as AddressInfo | null)?.address;
  }

  connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  async start(): Promise<void> {
    if (this.aedes) return;
    const aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        const c = client as AuthedClient;
        const secret = password?.toString('utf8') ?? '';
        const refuse = () => {
          this.counters.authFailures += 1;
          const err = Object.assign(new Error('Bad username or password'), { returnCode: 4 as const });
          done(err, false);
        };
        if (!username) { refuse(); return; }
        // Client ids `ef-<deviceId>` belong to their device (docs/protocol.md): another device taking
        // one would disconnect that device (MQTT-3.1.4-2) and fire its will, again and again.
        if (client.id.startsWith(DEVICE_CLIENT_PREFIX) && client.id !== deviceClientId(username)) {
          this.counters.authFailures += 1;
          this.log.warn({ clientId: client.id, username }, 'client id of another device refused');
          done(Object.assign(new Error(`client id ${client.id} belongs to another device`), { returnCode: 2 as const }), false);
          return;
        }
        this.opts.devices.verify(username, secret).then((ok) => {
          if (!ok) { refuse(); return; }
          c.efDeviceId = username;
          done(null, true);
        }, (err: unknown) => {
          this.log.error({ err: describeError(err) }, 'device lookup failed');
          refuse();
        });
      },
      authorizePublish: (client, packet, done) => {
        const id = (client as AuthedClient | null)?.efDeviceId;
        const refusal = !id || !devicesMayPublish(id, packet.topic) ? `publish to ${packet.topic} not allowed`
          : devicePublishRefusal(packet.topic, packet.payload.length, packet.retain);
        if (!refusal) { done(null); return; }
        this.counters.publishDenied += 1;
        done(new Error(refusal));
      },
      authorizeSubscribe: (client, sub, done) => {
        const id = (client as AuthedClient).efDeviceId;
        if (id && devicesMaySubscribe(id, sub.topic)) { done(null, sub); return; }
        this.counters.subscribeDenied += 1;
        // A null subscription makes aedes answer SUBACK 0x80 (failure) for this filter [MQTT-3.9.3].
        done(null, null);
      },
    });
    for (const f of this.opts.filters) {
      await new Promise<void>((resolve) => aedes.subscribe(f, (packet: AedesPublishPacket, cb: () => void) => {
        try {
          this.opts.onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
        } finally {
          cb();
        }
      }, () => resolve()));
    }
    // A fresh aedes holds no connections and no retained states; nobody is online until they say so.
    this.opts.devices.markAllOffline();
    aedes.on('clientError', (client, err) => this.log.debug({ client: client.id, err: err.message }, 'client error'));
    this.aedes = aedes;
    const track = (s: Socket) => { this.sockets.add(s); s.once('close', () => this.sockets.delete(s)); };
    const handle = (s: Socket) => {
      guardPacketSize(s, MAX_PACKET_REMAINING_LENGTH, ({ reason }) => {
        this.counters.oversizePackets += 1;
        this.log.warn({ remote: s.remoteAddress, reason }, 'connection closed: packet too large');
      });
      // Replies go out at once, not after the client's delayed ACK (see agent/src/util/tcp-nodelay.ts).
      s.setNoDelay(true);
      aedes.handle(s);
    };
    const tcp = createServer(handle);
    tcp.on('connection', track);
    await listen(tcp, this.port, this.opts.plainHost ?? this.opts.host);
    this.tcp = tcp;
    this.port = (tcp.address() as AddressInfo).port;
    if (this.opts.tls) {
      const tlsServer = createTlsServer({ cert: readFileSync(this.opts.tls.certPath), key: readFileSync(this.opts.tls.keyPath) }, handle);
      tlsServer.on('connection', track);
      await listen(tlsServer, this.tlsPort ?? 0, this.opts.host);
      this.tlsServer = tlsServer;
      this.tlsPort = (tlsServer.address() as AddressInfo).port;
    }
    this.log.info({ port: this.port, tlsPort: this.tlsPort }, 'embedded broker listening (MQTT 3.1.1)');
  }

  /** Publishes from the server itself (not subject to device ACLs); dropped while stopped. */
  publish(topic: string, payload: Buffer, qos: 0 | 1 = 1, retain = false): boolean {
    const aedes = this.aedes;
    if (!aedes) return false;
    aedes.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, (err) => {
      if (err) this.log.warn({ topic, err: err.message }, 'server publish failed');
    });
    return true;
  }

  /**
   * Ends the live sessions of a device whose secret was rotated or which was removed: a connection
   * opened with the old (perhaps leaked) secret would otherwise stay, and its alerts be stored.
   * Returns how many were closed.
   */
  disconnectDevice(deviceId: string): number {
    const clients = (this.aedes as unknown as { clients?: Record<string, AuthedClient> } | undefined)?.clients ?? {};
    let closed = 0;
    for (const c of Object.values(clients)) {
      if (c.efDeviceId !== deviceId) continue;
      c.close();
      closed++;
    }
    if (closed) this.log.info({ deviceId, closed }, 'device sessions closed (secret rotated or device removed)');
    return closed;
  }

  /** Closes listeners and every client connection. Safe twice; start() again reopens the same ports. */
  async stop(): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return;
    this.aedes = undefined;
    const closeServer = (s: Server | TlsServer | undefined) => (s ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve());
    const tcp = this.tcp;
    const tlsServer = this.tlsServer;
    const servers = Promise.all([closeServer(tcp), closeServer(tlsServer)]);
    this.tcp = undefined;
    this.tlsServer = undefined;
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await servers;
  }
}

function listen(server: Server | TlsServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new BrokerError(`Could not listen on ${host}:${port}: ${err.message}. Pick a free port in broker.embedded.`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
}
