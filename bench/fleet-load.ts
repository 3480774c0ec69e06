/**
 * Item 5, fleet load: N simulated devices (raw MQTT clients authenticated as registered devices,
 * in this process) against a fleet server in a child process, each sending telemetry at 1 Hz, then
 * an alert burst (every device at once). Measured in the server process: ingest lag (device `ts`
 * → stored) p50/p95/p99 and the server's CPU; with aedes embedded and with mosquitto.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { topicFor } from '../agent/src/protocol/topics.js';
import { mosquittoAvailable } from '../test/helpers/mosquitto.js';
import type { BrokerKind } from '../test/helpers/fleet.js';
import type { BenchContext } from './lib/context.js';
import { FleetServerChild } from './lib/fleet-child.js';
import { cpuSeconds } from './lib/proc.js';
import type { BenchResult, Cell } from './lib/result.js';
import { percentile, round } from './lib/stats.js';

const ALERTS_PER_DEVICE = 5;

function telemetry(i: number, startedMs: number): Buffer {
  // `ts` second: the server-side lag probe reads it from the first bytes.
  return Buffer.from(JSON.stringify({
    v: 1, ts: Date.now(), intervalMs: 1000, uptimeS: (Date.now() - startedMs) / 1000,
    frames: { in: i * 10, processed: i * 10, dropped: { capture: 0 } }, detectFps: 3.3,
    stages: { infer: { count: 30, p50Ms: 120, p95Ms: 150, p99Ms: 170 }, total: { count: 30, p50Ms: 160, p95Ms: 200, p99Ms: 230 } },
    eventLoop: { p50Ms: 1, p99Ms: 4, maxMs: 9 }, cpu: { processPercent: 45, load1: 1.2 },
    memory: { rssBytes: 4.4e8, heapUsedBytes: 6e7, systemFreeBytes: 2e9, systemTotalBytes: 8e9 },
    models: { 'coco-centernet': '1.0.0' },
    drift: { baselineReady: false, threshold: 0.25, flagged: false, psi: {}, flags: [], current: { confidenceHistogram: [0, 1, 2], classMix: { person: 1 } } },
    outbox: { pending: 0, dropped: 0 },
  }));
}

function alert(deviceId: string, n: number): Buffer {
  return Buffer.from(JSON.stringify({
    v: 1, ts: Date.now(), id: `${deviceId}-b${n}`, seq: n, camera: 'cam0', rule: 'zone-door', ruleKind: 'zone-enter', trackId: n,
    class: 'person', score: 0.9, box: { x: 10, y: 20, w: 30, h: 60 }, zone: 'door',
  }));
}

async function connectAll(url: string, devices: { id: string; secret: string }[], protocolVersion: 4 | 5): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  const batch = 50;
  for (let i = 0; i < devices.length; i += batch) {
    clients.push(...await Promise.all(devices.slice(i, i + batch).map((d) => new Promise<MqttClient>((resolve, reject) => {
      const c = mqtt.connect(url, { clientId: d.id, username: d.id, password: d.secret, protocolVersion, reconnectPeriod: 1000, keepalive: 60, connectTimeout: 30_000 });
      const timer = setTimeout(() => reject(new Error(`device ${d.id} did not connect within 60 s`)), 60_000);
      c.once('connect', () => { clearTimeout(timer); resolve(c); });
    }))));
  }
  return clients;
}

interface BrokerFigures { broker: BrokerKind; devices: number; connectS: number; telemetry: Record<string, number>; burst: Record<string, number> }

async function measureBroker(ctx: BenchContext, broker: BrokerKind, count: number, steadyMs: number): Promise<BrokerFigures> {
  ctx.log(`fleet-load: ${broker}: registering ${count} devices`);
  const server = await FleetServerChild.start(broker, count);
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    const t0 = performance.now();
    clients.push(...await connectAll(server.ready.url, server.ready.devices, broker === 'aedes' ? 4 : 5));
    const connectS = (performance.now() - t0) / 1000;
    ctx.log(`fleet-load: ${broker}: ${count} connected in ${round(connectS, 1)} s; telemetry at 1 Hz`);
    const started = Date.now();
    let sent = 0;
    clients.forEach((c, i) => {
      const topic = topicFor(server.ready.devices[i].id, 'telemetry');
      // Spread the devices over the second, as real devices started at different times would be.
      timers.push(setTimeout(() => {
        let n = 0;
        const tick = () => { c.publish(topic, telemetry(n++, started), { qos: 0 }); sent++; };
        tick();
        timers.push(setInterval(tick, 1000));
      }, (i * 1000) / clients.length));
    });
    const mosq = server.ready.mosquittoPid;
    await new Promise((r) => setTimeout(r, 2000));
    await server.ask({ cmd: 'window-start' }, 'window');
    const sent0 = sent;
    const m0 = mosq ? cpuSeconds(mosq) : 0;
    await new Promise((r) => setTimeout(r, steadyMs));
    const steady = await server.ask({ cmd: 'window-end' }, 'window');
    const m1 = mosq ? cpuSeconds(mosq) : 0;
    const tel = steady.lagMs.telemetry ?? [];
    const telemetryFig = {
      windowS: steady.wallS, sent: sent - sent0, received: steady.received.telemetry ?? 0, perSecond: (steady.received.telemetry ?? 0) / steady.wallS,
      lagP50Ms: percentile(tel, 0.5), lagP95Ms: percentile(tel, 0.95), lagP99Ms: percentile(tel, 0.99), lagMaxMs: Math.max(...tel),
      serverCpuPercent: (100 * steady.cpuS) / steady.wallS, mosquittoCpuPercent: mosq ? (100 * (m1 - m0)) / steady.wallS : Number.NaN,
    };
    ctx.log(`fleet-load: ${broker}: alert burst (${ALERTS_PER_DEVICE} per device)`);
    await server.ask({ cmd: 'window-start' }, 'window');
    const b0 = mosq ? cpuSeconds(mosq) : 0;
    const before = (await server.ask({ cmd: 'stats' }, 'stats')).alertsStored;
    const tb = performance.now();
    clients.forEach((c, i) => { for (let n = 0; n < ALERTS_PER_DEVICE; n++) c.publish(topicFor(server.ready.devices[i].id, 'alert'), alert(server.ready.devices[i].id, n), { qos: 1 }); });
    const want = before + clients.length * ALERTS_PER_DEVICE;
    const deadline = Date.now() + 120_000;
    let stored = before;
    while (stored < want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      stored = (await server.ask({ cmd: 'stats' }, 'stats')).alertsStored;
    }
    const drainS = (performance.now() - tb) / 1000;
    const burst = await server.ask({ cmd: 'window-end' }, 'window');
    const b1 = mosq ? cpuSeconds(mosq) : 0;
    const al = burst.lagMs.alert ?? [];
    const burstFig = {
      alerts: clients.length * ALERTS_PER_DEVICE, stored: stored - before, drainS,
      lagP50Ms: percentile(al, 0.5), lagP95Ms: percentile(al, 0.95), lagP99Ms: percentile(al, 0.99),
      serverCpuPercent: (100 * burst.cpuS) / burst.wallS, mosquittoCpuPercent: mosq ? (100 * (b1 - b0)) / burst.wallS : Number.NaN,
    };
    return { broker, devices: count, connectS, telemetry: telemetryFig, burst: burstFig };
  } finally {
    for (const t of timers) clearInterval(t);
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await server.stop();
  }
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const t0 = Date.now();
  const count = ctx.quick ? 100 : 1000;
  const steadyMs = ctx.quick ? 5000 : 15_000;
  const brokers: BrokerKind[] = mosquittoAvailable() ? ['aedes', 'mosquitto'] : ['aedes'];
  const figs: BrokerFigures[] = [];
  for (const b of brokers) figs.push(await measureBroker(ctx, b, count, steadyMs));
  const r = (v: number, d = 1) => round(v, d);
  const rows: Cell[][] = figs.map((f) => [f.broker, f.devices, r(f.connectS), r(f.telemetry.perSecond, 0), `${f.telemetry.received}/${f.telemetry.sent}`,
    r(f.telemetry.lagP50Ms), r(f.telemetry.lagP95Ms), r(f.telemetry.lagP99Ms), r(f.telemetry.serverCpuPercent), r(f.telemetry.mosquittoCpuPercent)]);
  const burstRows: Cell[][] = figs.map((f) => [f.broker, `${f.burst.stored}/${f.burst.alerts}`, r(f.burst.drainS, 2), r(f.burst.lagP50Ms), r(f.burst.lagP95Ms), r(f.burst.lagP99Ms), r(f.burst.serverCpuPercent), r(f.burst.mosquittoCpuPercent)]);
  return {
    bench: 'fleet-load', item: 5, title: 'Fleet load', status: 'measured', createdAt: new Date().toISOString(),
    durationS: (Date.now() - t0) / 1000, machine: ctx.machine,
    method: `${count} simulated devices (raw MQTT.js clients, each logged in with its own registered id and secret, all in the bench process) against the fleet server ` +
      `in a child process (its registry, ingest, SQLite; aedes embedded, or Debian mosquitto as an external broker with the server on shared subscriptions). ` +
      `Telemetry: each device publishes a full telemetry payload (QoS 0) every second, phases spread over the second; ${steadyMs / 1000} s window after 2 s of warm-up. ` +
      `Burst: then every device publishes ${ALERTS_PER_DEVICE} alerts (QoS 1) at once. Lag = stored in SQLite (after ingest returns, in the server) − the device's \`ts\`. ` +
      'Server CPU = process.cpuUsage of the server process over the window (100 % = one core); mosquitto\'s from /proc. The devices share the same 2 cores. No goal is set in the issue.',
    goals: [],
    headline: figs.map((f) => `${f.broker}: telemetry lag p99 ${r(f.telemetry.lagP99Ms, 0)} ms at ${r(f.telemetry.serverCpuPercent, 0)} % server CPU, burst p99 ${r(f.burst.lagP99Ms, 0)} ms`).join('; '),
    tables: [
      { caption: 'Telemetry at 1 Hz per device', columns: ['broker', 'devices', 'connect all s', 'msgs/s stored', 'stored/sent', 'lag p50 ms', 'lag p95 ms', 'lag p99 ms', 'server CPU %', 'mosquitto CPU %'], rows },
      { caption: `Alert burst (${ALERTS_PER_DEVICE} per device at once, telemetry continuing)`, columns: ['broker', 'stored/sent', 'all stored after s', 'lag p50 ms', 'lag p95 ms', 'lag p99 ms', 'server CPU %', 'mosquitto CPU %'], rows: burstRows },
    ],
    figures: { runs: figs },
  };
}
