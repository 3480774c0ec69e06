/**
 * `npm start`: the whole system on one machine. A fleet server (embedded MQTT broker, SQLite
 * registry, HTTP API) and one agent on assets/video/vtest.avi with the default COCO detector and the
 * zone/line rules of configs/agent.example.json. Alerts go agent → outbox → MQTT → server and are
 * printed when the server has stored them (its receipt empties the outbox). Ctrl-C (or SIGTERM)
 * stops the agent, drains the outbox within a bound, then the link and the server; exit 0.
 *
 * Options: --http-port N (8080) --mqtt-port N (1883; 0 = any free port) --data-dir DIR (.state/demo)
 *          --config FILE (configs/agent.example.json) --frames N (per camera; default the whole file)
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseFleetConfig } from '../fleet-server/src/config/schema.js';
import { FleetServer } from '../fleet-server/src/server/fleet-server.js';
import { FleetAttachment } from '../agent/src/pipeline/fleet-attachment.js';
import { loadAgentConfig } from '../agent/src/config/load.js';
import { AgentRunner } from '../agent/src/pipeline/agent-runner.js';
import { ServiceLifecycle } from '../agent/src/service/lifecycle.js';
import { describeError } from '../agent/src/util/errors.js';
import { numberOption, POSITIVE_INT, TCP_PORT } from '../agent/src/cli/args.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    'http-port': { type: 'string', default: '8080' },
    'mqtt-port': { type: 'string', default: '1883' },
    'data-dir': { type: 'string', default: join(ROOT, '.state/demo') },
    config: { type: 'string', default: join(ROOT, 'configs/agent.example.json') },
    frames: { type: 'string' },
  },
});
const say = (line: string): void => { process.stdout.write(`${line}\n`); };
let ports: [number, number], frames: number | undefined;
try {
  ports = [numberOption('--http-port', args['http-port'], TCP_PORT)!, numberOption('--mqtt-port', args['mqtt-port'], TCP_PORT)!];
  frames = numberOption('--frames', args.frames, POSITIVE_INT);
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exit(2);
}
const dataDir = resolve(args['data-dir']);
mkdirSync(dataDir, { recursive: true });

const password = randomBytes(9).toString('base64url');
const makeServer = (httpPort: number, mqttPort: number) => new FleetServer({
  config: parseFleetConfig({
    dataDir: join(dataDir, 'fleet'),
    http: { host: '127.0.0.1', port: httpPort },
    broker: { mode: 'embedded', embedded: { host: '127.0.0.1', port: mqttPort } },
    operator: { username: 'admin', password },
  }),
});
let server = makeServer(...ports);
try {
  await server.start();
} catch (err) {
  // Installing Debian's mosquitto starts its service on :1883, and :8080 is often taken: the demo
  // then takes free ports and prints them rather than failing on a fresh machine.
  const inUse = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'EADDRINUSE' || (Boolean((e as Error)?.cause) && inUse((e as Error).cause));
  if (!inUse(err)) throw err;
  await server.stop().catch(() => undefined);
  say(`port in use (${(err as Error).message}); using free ports instead`);
  server = makeServer(0, 0);
  await server.start();
}
const httpUrl = `http://127.0.0.1:${server.api.port}`;
const mqttUrl = `mqtt://127.0.0.1:${server.broker!.port}`;
say(`fleet server: dashboard ${httpUrl}/ (log in as admin / ${password}), API ${httpUrl}/api, MQTT ${mqttUrl}`);

const config = await loadAgentConfig(args.config);
config.stateDir = join(dataDir, 'agent');
if (frames !== undefined) for (const c of config.cameras) c.source.maxFrames = frames;
const deviceId = config.deviceId ?? 'demo-01';
// The demo re-registers its device on every start (new secret), like `fleetctl device add --rotate`.
const { secret } = server.addDevice(deviceId, { rotate: true });
config.link = { url: mqttUrl, protocolVersion: 'auto' };
// The same attachment `edge-agent run` uses: outbox, telemetry, and the privacy gate on every snapshot.
const fleet = new FleetAttachment({ config, secret });
await fleet.start();
const link = fleet.link!;
const sent = new Map<string, string>();
let delivered = 0;
link.on('delivered', ({ id }) => {
  delivered++;
  say(`alert ${sent.get(id) ?? id}`);
  sent.delete(id);
});

const fleetSinks = fleet.sinks();
const runner: AgentRunner = new AgentRunner({
  config,
  onStage: fleet.telemetryFor(() => runner).onStage,
  sinks: {
    onFrame: fleetSinks.onFrame,
    onAlert: (ev, frame) => {
      const where = ev.zone !== undefined ? ` zone ${ev.zone}` : ev.direction !== undefined ? ` ${ev.direction}` : '';
      sent.set(ev.id, `${ev.kind} ${ev.ruleId}${where}: ${ev.label} track ${ev.trackId} at frame ${ev.frameIndex} (camera ${ev.cameraId})`);
      return fleetSinks.onAlert?.(ev, frame);
    },
  },
});
const ac = new AbortController();
let runDone: Promise<void> = Promise.resolve();

const lifecycle = new ServiceLifecycle();
lifecycle.onShutdown(async () => {
  say('stopping: camera first');
  ac.abort();
  await runDone;
}, { name: 'agent', timeoutMs: 10_000 });
lifecycle.onShutdown(async () => {
  // Alerts already in the outbox are durable (SQLite) and would go out on the next start; the
  // demo still gives them a moment to reach the server so that the stop shows them delivered.
  const deadline = Date.now() + 5000;
  while (link.status().outbox.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const pending = link.status().outbox.pending;
  say(`outbox: ${delivered} delivered, ${pending} pending${pending ? ' (kept on disk for the next start)' : ''}`);
  await fleet.stop();
}, { name: 'outbox', timeoutMs: 7000 });
lifecycle.onShutdown(() => server.stop(), { name: 'server', timeoutMs: 5000 });
lifecycle.onShutdown(() => say('demo stopped cleanly'), { name: 'bye', timeoutMs: 1000 });
lifecycle.start();

say(`agent ${deviceId}: ${config.cameras.map((c) => c.source.kind === 'file' ? c.source.path : c.source.kind).join(', ')} with ${config.detector.model}`);
say('Ctrl-C stops everything.');
runDone = (async () => {
  try {
    await runner.start();
    const s = await runner.run(ac.signal);
    say(`agent: ${s.processed} frames processed at ${s.fps} fps, ${s.alerts} alerts raised${ac.signal.aborted ? '' : '; video finished, the server keeps running until Ctrl-C'}`);
  } catch (err) {
    const d = describeError(err);
    say(`agent failed: ${d.code} ${d.message}`);
    process.exitCode = 1;
  } finally {
    await runner.stop();
  }
})();
