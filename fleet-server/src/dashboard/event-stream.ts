/**
 * GET /api/events: server-sent events (HTML Living Standard §9.2, `text/event-stream`) for the
 * dashboard. Authenticated like every API route (session cookie or bearer token). Each client's
 * unsent bytes are bounded: past `maxBufferedBytes` events are dropped for that client and counted
 * (the page refetches on the next event it does get). A comment line every `heartbeatMs` keeps
 * proxies from closing an idle stream and lets the server notice a gone client.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { FleetEvent, FleetEventBus } from './event-bus.js';

export interface EventStreamOptions {
  bus: FleetEventBus;
  heartbeatMs?: number;
  maxBufferedBytes?: number;
  /** Most concurrent streams; more are refused with 503 (each holds a socket). */
  maxClients?: number;
  /**
   * Whether the request's session is still valid (one indexed lookup). Checked at most once a second
   * per stream before an event (events come per device message), at each heartbeat, and at once for
   * every stream by `revalidate()` (after a logout). A stream opened before a logout or the session's
   * expiry then ends; it went on delivering device events.
   */
  sessionValid?: (req: FastifyRequest) => boolean;
}

export interface EventStreamStats {
  clients: number;
  sent: number;
  dropped: number;
}

export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private readonly closers = new Set<() => void>();
  private readonly checkers = new Set<() => boolean>();
  private nextId = 1;
  readonly stats = { sent: 0, dropped: 0 };

  constructor(private readonly opts: EventStreamOptions) {}

  getStats(): EventStreamStats {
    return { clients: this.clients.size, ...this.stats };
  }

  /** Registers the route on an authenticated scope; streams end when the server closes. */
  register(app: FastifyInstance): void {
    app.addHook('preClose', async () => { this.closeAll(); });
    app.get('/api/events', async (req, reply) => {
      if (this.clients.size >= (this.opts.maxClients ?? 64)) {
        return reply.code(503).send({ error: { code: 'E_BUSY', message: 'Too many live dashboard streams; close a tab and retry.' } });
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      // The browser reconnects after `retry` ms when the stream breaks (§9.2.6).
      res.write('retry: 2000\n\n');
      this.clients.add(res);
      let checkedAt = Date.now();
      const valid = (force = true): boolean => {
        if (!this.opts.sessionValid || (!force && Date.now() - checkedAt < 1000)) return true;
        checkedAt = Date.now();
        if (this.opts.sessionValid(req)) return true;
        close();
        return false;
      };
      this.checkers.add(valid);
      const unsubscribe = this.opts.bus.subscribe((e) => { if (valid(false)) this.send(res, e); });
      const heartbeat = setInterval(() => { if (valid()) res.write(': ping\n\n'); }, this.opts.heartbeatMs ?? 15_000);
      heartbeat.unref();
      const close = () => {
        clearInterval(heartbeat);
        unsubscribe();
        this.clients.delete(res);
        this.closers.delete(close);
        this.checkers.delete(valid);
        if (!res.writableEnded) res.end();
      };
      this.closers.add(close);
      req.raw.on('close', close);
      res.on('error', close);
      this.send(res, { type: 'hello' });
    });
  }

  /** Re-checks every stream's session now (after a logout), ending those that no longer hold. */
  revalidate(): void {
    for (const check of [...this.checkers]) check();
  }

  closeAll(): void {
    for (const c of [...this.closers]) c();
  }

  private send(res: ServerResponse, e: FleetEvent | { type: 'hello' }): void {
    if (res.writableLength > (this.opts.maxBufferedBytes ?? 256 * 1024)) {
      this.stats.dropped += 1;
      return;
    }
    res.write(`id: ${this.nextId++}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    this.stats.sent += 1;
  }
}
