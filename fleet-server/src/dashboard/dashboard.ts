/**
 * The operator dashboard, served by the fleet server: static pages at `/` (public; the page itself
 * asks for a login), live updates at GET /api/events, and one summary route the device table needs
 * (device + latest telemetry + groups in one call). Everything else the pages read is the ordinary
 * HTTP API (devices, telemetry, alerts, models, rollouts), authenticated by the session cookie.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AlertStore } from '../db/alerts.js';
import type { DeviceRecord, DeviceStore } from '../db/devices.js';
import type { TelemetryStore } from '../db/telemetry.js';
import { pipelineP95Ms, type FleetEventBus } from './event-bus.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';
import { moduleLogger, type Logger } from '../../../agent/src/util/log.js';
import { findPublicDir, loadStaticFiles, publicDirCandidates, type StaticFile } from './static-files.js';

export interface DashboardOptions {
  bus: FleetEventBus;
  devices: DeviceStore;
  telemetry: TelemetryStore;
  alerts: AlertStore;
  /** Groups (sites) of a device, from the rollout module's device groups when it is present. */
  groupsOf?: (deviceId: string) => string[];
  /** Directory of the static files; default: the first of publicDirCandidates() that has them. */
  publicDir?: string;
  heartbeatMs?: number;
  logger?: Logger;
  /** Whether a live stream's session still holds (logout, expiry); see EventStream. */
  sessionValid?: EventStreamOptions['sessionValid'];
}

export interface DeviceSummary extends DeviceRecord {
  groups: string[];
  detectFps: number | null;
  p95Ms: number | null;
  telemetryTsMs: number | null;
  /** Alerts received in the last 24 h (ALERT_COUNT_WINDOW_MS); counting all of them grew with retention. */
  alertsLast24h: number;
}

const ALERT_COUNT_WINDOW_MS = 24 * 3600_000;

/**
 * Content-Security-Policy: only our own scripts, styles and images (snapshots come from our API),
 * no inline script, no framing (clickjacking). `data:` images are not needed.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export class Dashboard {
  readonly events: EventStream;
  private files: Map<string, StaticFile> | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: DashboardOptions) {
    this.events = new EventStream({ bus: opts.bus, heartbeatMs: opts.heartbeatMs, sessionValid: opts.sessionValid });
    this.log = opts.logger ?? moduleLogger('dashboard');
  }

  /**
   * Static files; no operator needed (the login page is one of them). Without the files (a bundle
   * shipped without dist/dashboard/) the API still runs and `/` says what is missing.
   */
  registerPublic(app: FastifyInstance): void {
    const candidates = this.opts.publicDir ? [this.opts.publicDir] : publicDirCandidates();
    const dir = findPublicDir(candidates);
    if (!dir) {
      const message = `The dashboard's files were not found (looked in ${candidates.join(', ')}). Copy fleet-server/src/dashboard/public to one of them or set EF_DASHBOARD_DIR; the HTTP API works without them.`;
      this.log.warn({ candidates }, message);
      app.get('/', async (_req, reply) => reply.code(503).send({ error: { code: 'E_DASHBOARD_FILES', message } }));
      return;
    }
    const files = (this.files ??= loadStaticFiles(dir));
    const serve = (path: string) => async (_req: unknown, reply: FastifyReply) => {
      const f = files.get(path);
      if (!f) return reply.code(404).send({ error: { code: 'E_NOT_FOUND', message: `No dashboard file ${path}.` } });
      return reply.header('content-type', f.contentType).header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache').send(f.body);
    };
    app.get('/', serve('/ui/index.html'));
    // Browsers ask for it unprompted; answer without a 404 in the console.
    app.get('/favicon.ico', async (_req, reply) => reply.code(204).send());
    app.get<{ Params: { '*': string } }>('/ui/*', async (req, reply) => serve(`/ui/${req.params['*']}`)(req, reply));
  }

  /** Authenticated routes (register inside the API's auth scope). */
  registerApi(app: FastifyInstance): void {
    this.events.register(app);
    app.get('/api/dashboard/devices', async () => ({ items: this.deviceSummaries() }));
    app.get('/api/dashboard/status', async () => ({ events: this.events.getStats(), listenerErrors: this.opts.bus.listenerErrors }));
  }

  deviceSummaries(): DeviceSummary[] {
    const o = this.opts;
    const devices = o.devices.list();
    const alerts = o.alerts.recentCounts(devices.map((d) => d.id), ALERT_COUNT_WINDOW_MS);
    return devices.map((d) => {
      const last = o.telemetry.series(d.id, { limit: 1 })[0];
      return {
        ...d,
        groups: o.groupsOf?.(d.id) ?? [],
        detectFps: last ? last.payload.detectFps : null,
        p95Ms: last ? pipelineP95Ms(last.payload.stages) : null,
        telemetryTsMs: last ? last.tsMs : null,
        alertsLast24h: alerts.get(d.id) ?? 0,
      };
    });
  }
}
