/**
 * HTTP API (fastify). Every route except /api/health and /api/login needs an operator bearer token
 * (`Authorization: Bearer <token>` from POST /api/login) or the dashboard's session cookie (set by the same login). Device secrets are returned once, by the
 * call that creates them. Routes are listed in docs/protocol.md ("HTTP API").
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { DEVICE_ID_PATTERN } from '../../../agent/src/protocol/index.js';
import { ConfigError, describeError, EdgeFleetError } from '../../../agent/src/util/errors.js';
import type { AlertStore } from '../db/alerts.js';
import type { DeviceStore } from '../db/devices.js';
import type { OperatorStore } from '../db/operators.js';
import type { TelemetryStore } from '../db/telemetry.js';
import { clearedSessionCookie, sessionCookie, sessionFromCookie } from '../dashboard/session-cookie.js';
import { LoginThrottle, loginClient } from './login-throttle.js';
import { LoginSlots } from './login-slots.js';
import { crossOriginRefusal } from './origin-check.js';

export interface HttpApiOptions {
  host: string;
  port: number;
  devices: DeviceStore;
  telemetry: TelemetryStore;
  alerts: AlertStore;
  operators: OperatorStore;
  registry: Registry;
  sessionTtlMs: number;
  publicMetrics: boolean;
  /** Extra status for GET /api/status (ingest counters, broker). */
  status: () => Record<string, unknown>;
  /** Called after a device was added or removed (mosquitto sync). */
  /** After a device is added, rotated (`changed`: its id) or removed (its id). */
  onDevicesChanged?: (changed?: string) => void;
  /** After a logout (live dashboard streams re-check their sessions). */
  onLogout?: () => void;
  /** Failed-login limit per client (login-throttle.ts, loginClient) and username (default: 10 in 5 minutes). */
  loginThrottle?: LoginThrottle;
  /** Failed-login limit per client, any username (default: 30 in 5 minutes). */
  addressThrottle?: LoginThrottle;
  /**
   * Addresses or CIDRs of the reverse proxies in front of the API (Fastify's trustProxy, as
   * @fastify/proxy-addr reads them: also "loopback", "linklocal", "uniquelocal"): the client address
   * of their requests is taken from X-Forwarded-For, so the login limits count each client, not the
   * proxy. Empty or absent: off, every request is the address it comes from.
   */
  trustProxy?: string[];
  /** Password checks at once and waiting (default: half of libuv's thread pool, 8 waiting). */
  loginSlots?: LoginSlots;
  /** Members of a device group (the alert list's `group` filter). */
  groupMembers?: (group: string) => string[];
  /** Lets later modules (OTA, dashboard) add routes before listen. */
  extend?: (app: FastifyInstance, auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>) => void | Promise<void>;
  /**
   * Origins besides the server's own (its Host, or a proxy's X-Forwarded-Host) whose pages may
   * change state with the session cookie: the public address behind a proxy that rewrites Host.
   */
  allowedOrigins?: string[];
  /** Routes that need no operator (the dashboard's static files and login page). */
  extendPublic?: (app: FastifyInstance) => void | Promise<void>;
}

/** The operator token of a request: the bearer token, else the dashboard's session cookie. */
export function requestToken(req: FastifyRequest): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7) : sessionFromCookie(req.headers.cookie) ?? '';
}

/** Fastify with http.trustProxy (off when empty); an entry @fastify/proxy-addr cannot read is named. */
function newFastify(trustProxy: readonly string[] | undefined): FastifyInstance {
  try {
    return Fastify({ logger: false, bodyLimit: 64 * 1024, trustProxy: trustProxy?.length ? [...trustProxy] : false });
  } catch (err) {
    throw new ConfigError(`http.trustProxy: ${(err as Error).message}; expected the proxies' addresses or CIDRs (e.g. "127.0.0.1", "10.0.0.0/8", "loopback").`, [], { cause: err });
  }
}

function isTls(req: FastifyRequest): boolean {
  return req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https';
}

const LoginBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });
const DeviceBody = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }), rotate: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
const DeviceParams = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) });
const AlertParams = Type.Object({ deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const AlertQuery = Type.Object({
  deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
  /** Comma-separated device ids. */
  deviceIds: Type.Optional(Type.String({ maxLength: 16_384 })),
  /** A site or group: its members (a URL of ids broke past ~800 devices: 431). */
  group: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  rule: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  class: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
  beforeSeq: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
});
const TelemetryQuery = Type.Object({
  sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});

export class HttpApi {
  private app: FastifyInstance | undefined;
  port = 0;

  constructor(private readonly opts: HttpApiOptions) {}

  async start(): Promise<void> {
    if (this.app) return;
    const o = this.opts;
    // Fastify's own ajv coerces query strings to the declared types (limit=5 → 5).
    const app = newFastify(o.trustProxy);
    const auth = async (req: FastifyRequest, reply: FastifyReply) => {
      // A page of another origin posting with the operator's cookie (origin-check.ts).
      const crossOrigin = crossOriginRefusal(req, o.allowedOrigins);
      if (crossOrigin) {
        await reply.code(403).send({ error: { code: 'E_CROSS_ORIGIN', message: crossOrigin } });
        return;
      }
      const token = requestToken(req);
      const user = token ? o.operators.authenticate(token) : undefined;
      if (!user) {
        await reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: 'E_AUTH', message: 'Expected an operator token (Authorization: Bearer ...) from POST /api/login.' } });
      }
    };
    app.setErrorHandler((err, _req, reply) => {
      const d = describeError(err);
      const status = (err as { statusCode?: number }).statusCode ?? (err instanceof EdgeFleetError ? 400 : 500);
      void reply.code(d.code === 'E_DEVICE_EXISTS' ? 409 : status).send({ error: d });
    });

    app.get('/api/health', async () => ({ ok: true }));
    const throttle = o.loginThrottle ?? new LoginThrottle();
    const addressThrottle = o.addressThrottle ?? new LoginThrottle({ maxFailures: 30 });
    const slots = o.loginSlots ?? new LoginSlots();
    app.post<{ Body: Static<typeof LoginBody> }>('/api/login', { schema: { body: LoginBody } }, async (req, reply) => {
      // Per client and username: behind a proxy every operator shares one address, and a guesser of
      // one account must not lock the others out. Per client too, with a higher limit: one address
      // cycling usernames never met the first, and every try cost a scrypt. The client is the proxy's
      // client with http.trustProxy; a login on the server's own host, not through a proxy, counts
      // apart (loginClient), so a guesser behind the proxy never locks out fleetctl on the box.
      const client = loginClient({ ip: req.ip, peer: req.socket.remoteAddress, headers: req.headers });
      const address = client.key;
      const key = `${client.key} ${req.body.username}`;
      const waitMs = throttle.retryAfterMs(key);
      const addressWaitMs = addressThrottle.retryAfterMs(address);
      if (waitMs > 0 || addressWaitMs > 0) {
        const s = Math.ceil(Math.max(waitMs, addressWaitMs) / 1000);
        const limit = waitMs > 0 ? throttle : addressThrottle;
        const whose = waitMs > 0 ? `for ${req.body.username} from ${client.shown}` : `from ${client.shown}, whatever the username`;
        const proxy = client.viaUntrustedProxy
          ? ` This login came through a proxy at ${req.ip} that http.trustProxy does not name, so every client behind it counts as ${req.ip}: have the proxy send X-Forwarded-For and list its address in http.trustProxy. A login on the server's host straight to its port, not through the proxy, is counted apart.`
          : '';
        return reply.code(429).header('retry-after', String(s))
          .send({ error: { code: 'E_THROTTLED', message: `Too many failed logins ${whose} (${limit.max} within ${limit.windowMs / 60_000} min); logins are refused until fewer have failed within the last ${limit.windowMs / 60_000} min: in ${s} s at the earliest, later while failures keep coming.${proxy}` } });
      }
      const pending = slots.run(() => o.operators.login(req.body.username, req.body.password, o.sessionTtlMs));
      if (!pending) {
        // Every password check slot is taken: refused before any hashing (login-slots.ts), and not counted.
        return reply.code(503).header('retry-after', '1')
          .send({ error: { code: 'E_BUSY', message: 'Too many logins are being checked right now; try again in 1 s.' } });
      }
      // Counted before the (slow) check, so that parallel guesses cannot all pass the limit; a success clears it.
      throttle.failed(key);
      addressThrottle.failed(address);
      const session = await pending;
      if (!session) return reply.code(401).send({ error: { code: 'E_AUTH', message: 'Wrong operator username or password.' } });
      throttle.succeeded(key);
      addressThrottle.forgive(address);
      // The dashboard rides on the same token as an HttpOnly, SameSite=Strict cookie.
      void reply.header('set-cookie', sessionCookie(session.token, { maxAgeS: (session.expiresAtMs - Date.now()) / 1000, secure: isTls(req) }));
      return session;
    });
    app.get('/metrics', { preHandler: o.publicMetrics ? [] : [auth] }, async (_req, reply) => {
      return reply.header('content-type', o.registry.contentType).send(await o.registry.metrics());
    });

    await o.extendPublic?.(app);
    await app.register(async (api) => {
      api.addHook('preHandler', auth);
      api.post('/api/logout', async (req, reply) => {
        o.operators.logout(requestToken(req));
        o.onLogout?.();
        void reply.header('set-cookie', clearedSessionCookie(isTls(req)));
        return { ok: true };
      });
      api.get('/api/status', async () => o.status());
      api.get('/api/devices', async () => ({ items: o.devices.list() }));
      api.post<{ Body: Static<typeof DeviceBody> }>('/api/devices', { schema: { body: DeviceBody } }, async (req, reply) => {
        const r = o.devices.add(req.body.id, { rotate: req.body.rotate });
        o.onDevicesChanged?.(req.body.rotate ? req.body.id : undefined);
        return reply.code(201).send({ device: r.device, secret: r.secret, note: 'The secret is shown only now; it is stored hashed.' });
      });
      api.get<{ Params: Static<typeof DeviceParams> }>('/api/devices/:id', { schema: { params: DeviceParams } }, async (req, reply) => {
        const d = o.devices.get(req.params.id);
        return d ?? reply.code(404).send({ error: { code: 'E_DEVICE_NOT_FOUND', message: `No device ${req.params.id}.` } });
      });
      api.delete<{ Params: Static<typeof DeviceParams> }>('/api/devices/:id', { schema: { params: DeviceParams } }, async (req, reply) => {
        if (!o.devices.remove(req.params.id)) return reply.code(404).send({ error: { code: 'E_DEVICE_NOT_FOUND', message: `No device ${req.params.id}.` } });
        o.onDevicesChanged?.(req.params.id);
        return { ok: true };
      });
      api.get<{ Params: Static<typeof DeviceParams>; Querystring: Static<typeof TelemetryQuery> }>('/api/devices/:id/telemetry',
        { schema: { params: DeviceParams, querystring: TelemetryQuery } },
        async (req) => ({ items: o.telemetry.series(req.params.id, { sinceMs: req.query.sinceMs, limit: req.query.limit }) }));
      api.get<{ Querystring: Static<typeof AlertQuery> }>('/api/alerts', { schema: { querystring: AlertQuery } },
        async (req, reply) => {
          const q = req.query;
          const deviceIds = q.deviceIds === undefined ? undefined : q.deviceIds.split(',').filter(Boolean);
          const bad = deviceIds?.find((id) => !new RegExp(DEVICE_ID_PATTERN).test(id));
          if (bad !== undefined) return reply.code(400).send({ error: { code: 'E_INPUT', message: `deviceIds: ${JSON.stringify(bad)} is not a device id` } });
          const members = q.group === undefined ? undefined : o.groupMembers?.(q.group) ?? [];
          const ids = members && deviceIds ? members.filter((id) => deviceIds.includes(id)) : members ?? deviceIds;
          return o.alerts.page({ deviceId: q.deviceId, deviceIds: ids, rule: q.rule, class: q.class, sinceReceivedMs: q.sinceMs, beforeSeq: q.beforeSeq, limit: q.limit });
        });
      api.get<{ Params: Static<typeof AlertParams> }>('/api/alerts/:deviceId/:id', { schema: { params: AlertParams } }, async (req, reply) => {
        const a = o.alerts.get(req.params.deviceId, req.params.id);
        return a ?? reply.code(404).send({ error: { code: 'E_NOT_FOUND', message: 'No such alert.' } });
      });
      api.get<{ Params: Static<typeof AlertParams> }>('/api/alerts/:deviceId/:id/snapshot', { schema: { params: AlertParams } }, async (req, reply) => {
        const s = o.alerts.snapshot(req.params.deviceId, req.params.id);
        if (!s) return reply.code(404).send({ error: { code: 'E_NOT_FOUND', message: 'This alert has no stored snapshot.' } });
        return reply.header('content-type', s.contentType).header('cache-control', 'private, no-store').send(s.data);
      });
      await o.extend?.(api, auth);
    });
    await app.listen({ host: o.host, port: o.port });
    this.app = app;
    this.port = (app.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    await app.close();
  }
}
