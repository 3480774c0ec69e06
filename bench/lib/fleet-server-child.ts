/**
 * Child process of bench/fleet-load.ts and bench/ota.ts: an in-process fleet server (test helper
 * startFleet: aedes embedded, or Debian mosquitto as an external broker) with N devices registered
 * through the registry, so that the simulated devices run in another process and this process's
 * CPU is the fleet server's own. Talks to its parent over the IPC channel.
 *
 *   fork('bench/lib/fleet-server-child.ts', [broker, devices], { execArgv: ['--import', 'tsx'] })
 */
import { readFileSync } from 'node:fs';
import { startFleet, type BrokerKind } from '../../test/helpers/fleet.js';
import { rootLogger } from '../../agent/src/util/log.js';

export type ServerRequest = { cmd: 'ota-publish'; dir: string; version: string; role: string } | { cmd: 'window-start' } | { cmd: 'window-end' } | { cmd: 'stats' } | { cmd: 'stop' };
export type ServerReply =
  | { type: 'ready'; url: string; devices: { id: string; secret: string }[]; mosquittoPid?: number; publicKeyPem: string }
  | { type: 'ota'; size: number; sha256: string; desiredSetMs: number; desiredDoneMs: number }
  | { type: 'window'; lagMs: Record<string, number[]>; cpuS: number; wallS: number; received: Record<string, number> }
  | { type: 'stats'; received: Record<string, number>; alertsStored: number }
  | { type: 'stopped' };

const broker = process.argv[2] as BrokerKind;
const count = Number(process.argv[3]);
rootLogger().level = 'warn';
const fleet = await startFleet({ broker });
const devices: { id: string; secret: string }[] = [];
for (let i = 0; i < count; i++) {
  const id = `sim-${String(i).padStart(4, '0')}`;
  // Through the registry; the last one through addDevice so that mosquitto's files sync once.
  devices.push(i < count - 1 ? { id, secret: fleet.server.devices.add(id).secret } : fleet.addDevice(id));
}

let lagMs: Record<string, number[]> = {};
let received: Record<string, number> = {};
let measuring = false;
const ingest = fleet.server.ingest;
const handle = ingest.handle.bind(ingest);
const TS = /"ts":(\d{13})/;
// Lag = stored (after handle() returns) − the device's send time (`ts`, same machine clock).
ingest.handle = (topic: string, payload: Buffer): void => {
  handle(topic, payload);
  const kind = topic.slice(topic.lastIndexOf('/') + 1);
  received[kind] = (received[kind] ?? 0) + 1;
  if (!measuring) return;
  const m = TS.exec(payload.toString('latin1', 0, 48));
  if (m) (lagMs[kind] ??= []).push(Date.now() - Number(m[1]));
};

let cpu0 = process.cpuUsage();
let wall0 = performance.now();
const send = (r: ServerReply) => process.send?.(r);
async function otaPublish(req: Extract<ServerRequest, { cmd: 'ota-publish' }>): Promise<void> {
  // The OTA module is loaded only here, so fleet-load runs even where OTA is absent.
  const { publishModelDir } = await import('../../fleet-server/src/registry/publish.js');
  const ota = fleet.server.ota;
  const { record } = await publishModelDir(ota.registry, ota.key.privateKey, { dir: req.dir, version: req.version });
  const desiredSetMs = Date.now();
  cpu0 = process.cpuUsage();
  wall0 = performance.now();
  // Every device at once (one wave of 100 %): the fan-out itself, without rollout gates.
  for (const d of devices) ota.desired.set(d.id, req.role, { version: record.version, manifest: record.manifest, signature: record.signature });
  send({ type: 'ota', size: record.size, sha256: record.sha256, desiredSetMs, desiredDoneMs: Date.now() });
}

process.on('message', (req: ServerRequest) => {
  if (req.cmd === 'ota-publish') {
    otaPublish(req).catch((err: unknown) => { process.stderr.write(`ota-publish failed: ${(err as Error).stack}\n`); process.exit(1); });
  } else if (req.cmd === 'window-start') {
    lagMs = {};
    received = {};
    measuring = true;
    cpu0 = process.cpuUsage();
    wall0 = performance.now();
    send({ type: 'window', lagMs: {}, cpuS: 0, wallS: 0, received: {} });
  } else if (req.cmd === 'window-end') {
    measuring = false;
    const c = process.cpuUsage(cpu0);
    send({ type: 'window', lagMs, cpuS: (c.user + c.system) / 1e6, wallS: (performance.now() - wall0) / 1000, received });
  } else if (req.cmd === 'stats') {
    send({ type: 'stats', received, alertsStored: ingest.getStats().alertsStored });
  } else {
    void fleet.stop().then(() => { send({ type: 'stopped' }); process.disconnect?.(); });
  }
});
const mosquittoPid = fleet.mosquitto ? Number(readFileSync(fleet.mosquitto.pidFile, 'utf8').trim()) : undefined;
send({ type: 'ready', url: fleet.mqttUrl, devices, mosquittoPid, publicKeyPem: fleet.server.ota?.key.publicKeyPem ?? '' });
