/**
 * Prometheus text endpoint (`GET /metrics`) on localhost for a prom-client registry. It binds
 * 127.0.0.1 by default: metrics reveal camera activity, so exposing them is an explicit choice.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { describeError } from '../util/errors.js';

export interface MetricsServerOptions {
  registry: Registry;
  host?: string;
  /** 0 picks a free port (see `port` after start). */
  port?: number;
}

export class MetricsServer {
  private server: Server | undefined;
  port = 0;

  constructor(private readonly opts: MetricsServerOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      this.opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${describeError(err).message}\n`),
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 9464, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
