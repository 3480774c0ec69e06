/**
 * A rollout engine on real SQLite (in memory) with `n` registered devices (d00, d01, ...), each
 * reporting model m 1.0.0 committed; m 1.0.0 and 2.0.0 are published (onnx-cpu), the clock is fake
 * and steered by `advance`, and every desired message the store publishes is kept in `published`.
 * The rollout unit tests share it: withRolloutFleet() removes its files after the test's body;
 * with rolloutFleet(), remove `dir` when done.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { DesiredStore } from '../../fleet-server/src/ota/desired-store.js';
import { RolloutStore } from '../../fleet-server/src/rollouts/rollout-store.js';
import { RolloutEngine } from '../../fleet-server/src/rollouts/rollout-engine.js';
import { loadOrCreateServerKey } from '../../fleet-server/src/keys/server-key.js';
import type { DesiredPayload, ReportedPayload } from '../../agent/src/protocol/index.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';

export type RolloutFleet = Awaited<ReturnType<typeof rolloutFleet>>;

export async function rolloutFleet(n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ef-ro-'));
  let now = 1_000_000;
  const clock = () => now;
  const db = openDatabase(':memory:');
  const devices = new DeviceStore(db, clock);
  const ids = Array.from({ length: n }, (_v, i) => `d${String(i).padStart(2, '0')}`);
  for (const id of ids) devices.add(id);
  const registry = new ModelRegistry(db, dir, clock);
  const key = loadOrCreateServerKey(dir);
  /** Publishes `name@version` for onnx-cpu; `labels` many labels make its desired entry that much larger. */
  const publishModel = async (name: string, version: string, labels = 0) => {
    writeFileSync(join(dir, `${name}-${version}.onnx`), `model ${name} ${version}`);
    await registry.addArtifact({
      file: join(dir, `${name}-${version}.onnx`),
      manifest: { name, version, target: 'onnx-cpu', precision: 'fp32', inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: Array.from({ length: labels }, (_v, i) => `label-number-${i}`), metrics: {} },
    }, key.privateKey);
  };
  for (const v of ['1.0.0', '2.0.0']) await publishModel('m', v);
  const published: DesiredPayload[] = [];
  const desired = new DesiredStore(db, (_t, p) => published.push(JSON.parse(p.toString()) as DesiredPayload), clock);
  const store = new RolloutStore(db, clock);
  const engine = new RolloutEngine({ store, devices, registry, desired, now: clock });
  /** The device's `reported` message: it runs `version` as its detector, with `ota` as its last install's progress. */
  const report = (id: string, version: string, ota?: Partial<OtaReport>) => devices.applyReported(id, {
    v: 1, ts: now, models: { detector: version }, health: { status: 'ok', reasons: [] },
    ...(ota ? { ota: { role: 'detector', ts: now, ...ota } } : {}),
  } as ReportedPayload);
  for (const id of ids) report(id, '1.0.0', { phase: 'idle', version: '1.0.0' });
  return { dir, db, ids, devices, registry, key, store, engine, desired, published, report, publishModel, now: () => now, advance: (ms: number) => { now += ms; } };
}

/** Runs `body` on a new rollout fleet of `n` devices, and removes its files after it, passed or failed. */
export async function withRolloutFleet(n: number, body: (s: RolloutFleet) => Promise<void> | void): Promise<void> {
  const s = await rolloutFleet(n);
  try {
    await body(s);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
}
