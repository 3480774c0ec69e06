/**
 * Item 6, OTA fan-out: a ~5 MB model (PP-OCRv4 text detector, 4.7 MB) published into the registry
 * and set as desired on N simulated devices at once; each device (a raw MQTT client in this process
 * running the agent's own ChunkDownloader) verifies the manifest signature, fetches the artifact
 * over MQTT chunk by chunk (fsync'd), checks its sha256 and reports it installed. Measured: time from
 * the desired state being set to the last device installed, and the server's CPU meanwhile.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { BenchContext } from './lib/context.js';
import type { BenchResult, Cell } from './lib/result.js';
import { notYet } from './lib/result.js';
import { FleetServerChild } from './lib/fleet-child.js';
import { disableNagle } from '../agent/src/util/tcp-nodelay.js';
import { percentile, round } from './lib/stats.js';

const MODEL_DIR = 'assets/models/ppocr-det';
const ROLE = 'detector';

interface DeviceRun { installedMs?: number; failed?: string; retries: number }

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const title = 'OTA fan-out';
  const missing = ['agent/src/ota/chunk-downloader.ts', 'fleet-server/src/ota/ota-service.ts', 'fleet-server/src/registry/publish.ts', `${MODEL_DIR}/model.onnx`].filter((p) => !existsSync(p));
  if (missing.length > 0) return notYet({ bench: 'ota', item: 6, title, reason: `needs ${missing.join(', ')} (OTA, issue 7)`, machine: ctx.machine });
  const { ChunkDownloader } = await import('../agent/src/ota/chunk-downloader.js');
  const { verifyManifest } = await import('../agent/src/protocol/manifest.js');
  const { topicFor } = await import('../agent/src/protocol/topics.js');
  const t0 = Date.now();
  const count = ctx.quick ? 20 : 200;
  const dir = mkdtempSync(join(tmpdir(), 'ef-bench-ota-'));
  ctx.log(`ota: registering ${count} devices`);
  const server = await FleetServerChild.start('aedes', count);
  const clients: MqttClient[] = [];
  const runs: DeviceRun[] = server.ready.devices.map(() => ({ retries: 0 }));
  try {
    let allDone: () => void = () => undefined;
    const finished = new Promise<void>((r) => { allDone = r; });
    let remaining = count;
    const settle = () => { remaining -= 1; if (remaining === 0) allDone(); };
    await Promise.all(server.ready.devices.map((d, i) => new Promise<void>((resolve, reject) => {
      const c = mqtt.connect(server.ready.url, { clientId: d.id, username: d.id, password: d.secret, protocolVersion: 4, reconnectPeriod: 1000, connectTimeout: 60_000 });
      clients.push(c);
      const downloader = new ChunkDownloader({
        send: (req) => { c.publish(topicFor(d.id, 'ota/req'), JSON.stringify(req), { qos: 1 }); return true; },
        requestTimeoutMs: 15_000, maxRetries: 8,
      });
      let started = false;
      c.on('message', (topic, payload) => {
        if (topic.endsWith('/ota/chunk')) { downloader.onChunkMessage(payload); return; }
        const desired = JSON.parse(payload.toString('utf8')) as { models: Record<string, { version: string; manifest?: unknown; signature?: string }> };
        const entry = desired.models[ROLE];
        if (!entry?.manifest || !entry.signature || started) return;
        started = true;
        void (async () => {
          // What the agent does before and after the transfer: signature first, sha256 of the file after.
          const manifest = verifyManifest(entry.manifest, entry.signature as string, server.ready.publicKeyPem);
          const part = join(dir, `${d.id}.part`);
          const r = await downloader.download(manifest, part);
          runs[i].retries = r.retries;
          const sha = createHash('sha256').update(readFileSync(part)).digest('hex');
          if (sha !== manifest.sha256) throw new Error(`sha256 mismatch on ${d.id}`);
          rmSync(part);
          runs[i].installedMs = Date.now();
          c.publish(topicFor(d.id, 'reported'), JSON.stringify({ v: 1, ts: Date.now(), models: { [ROLE]: manifest.version }, health: { status: 'ok', reasons: [] }, ota: { role: ROLE, phase: 'committed', version: manifest.version, ts: Date.now() } }), { qos: 1, retain: true });
        })().catch((err: unknown) => { runs[i].failed = (err as Error).message; }).finally(settle);
      });
      c.once('connect', () => {
        disableNagle(c); // as the agent's link does
        c.subscribe([topicFor(d.id, 'desired'), topicFor(d.id, 'ota/chunk')], { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    })));
    ctx.log(`ota: ${count} devices connected; publishing and setting desired`);
    const ota = await server.ask({ cmd: 'ota-publish', dir: MODEL_DIR, version: `bench-${Date.now()}`, role: ROLE }, 'ota', 60_000);
    const timeout = new Promise<void>((r) => setTimeout(r, ctx.quick ? 120_000 : 400_000).unref());
    await Promise.race([finished, timeout]);
    const win = await server.ask({ cmd: 'window-end' }, 'window');
    const installed = runs.filter((r) => r.installedMs !== undefined).map((r) => (r.installedMs as number) - ota.desiredSetMs);
    const failed = runs.filter((r) => r.failed);
    const allS = installed.length === count ? Math.max(...installed) / 1000 : Number.NaN;
    const mb = ota.size / 1e6;
    const rows: Cell[][] = [[count, round(mb, 2), `${installed.length}/${count}`, failed.length, round(percentile(installed, 0.5) / 1000, 1), round(percentile(installed, 0.95) / 1000, 1),
      round(allS, 1), round((count * mb) / allS, 1), round((100 * win.cpuS) / win.wallS, 0), runs.reduce((a, r) => a + r.retries, 0)]];
    return {
      bench: 'ota', item: 6, title, status: 'measured', createdAt: new Date().toISOString(), durationS: (Date.now() - t0) / 1000, machine: ctx.machine,
      method: `The fleet server (child process, aedes embedded) publishes \`${MODEL_DIR}\` (${round(mb, 2)} MB) into its registry (signed manifest) and sets it as desired on all ${count} devices at once. ` +
        'Each simulated device is a raw MQTT.js client (own id and secret) in the bench process running the agent\'s own code for the transfer: manifest signature check ' +
        '(verifyManifest), ChunkDownloader (64 KiB chunks requested one at a time by offset, QoS 1, appended and fsync\'d; Nagle off as on the agent\'s link), then sha256 of the file, then a retained `reported` ' +
        'with the version. Not included: loading the model in a new worker, self-test and the health window (per device, not fan-out costs). Time is from the desired state being set to the device\'s install. No goal is set in the issue.',
      goals: [],
      headline: `${installed.length}/${count} devices installed ${round(mb, 1)} MB; all after ${round(allS, 1)} s`,
      tables: [{ columns: ['devices', 'model MB', 'installed', 'failed', 'p50 s', 'p95 s', 'all installed s', 'aggregate MB/s', 'server CPU %', 'chunk retries'], rows }],
      figures: { size: ota.size, installedMs: installed, failures: failed.map((f) => f.failed).slice(0, 10), serverCpuS: win.cpuS, wallS: win.wallS },
      notes: failed.length > 0 ? [`first failure: ${failed[0].failed}`] : [],
    };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
