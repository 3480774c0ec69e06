/**
 * OtaManager against a stand-in link (desired messages emitted by hand, reports captured) and fake
 * detectors, with its clocks injected: the health window runs on the monotonic clock, so a step of the
 * wall clock (NTP) neither stretches nor cuts it; report timestamps stay on the wall clock. A desired
 * state older (lower rev) than the one followed, as a broker restored from its persistence file
 * re-delivers it, is ignored, across restarts too; a reset server (rev 1 again, stamped well after) is followed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DESIRED_RESET_MIN_GAP_MS, OtaManager, type InstallStep, type OtaManagerOptions } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import type { DesiredModel, OtaReport } from '../../agent/src/protocol/ota.js';
import { waitFor } from '../helpers/wait.js';
import { fakeDetector, fakeOtaLink } from '../helpers/ota-fakes.js';
import { stageStandIn } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { pino } from 'pino';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

interface Harness {
  manager: OtaManager;
  reports: OtaReport[];
  /** performance.now() at each install step the manager reached. */
  steps: Partial<Record<InstallStep, number>>;
  desire(version: string, rev: number, opts?: { ts?: number; healthWindowMs?: number }): void;
  last(): OtaReport | undefined;
  stop(): Promise<void>;
}

/**
 * A manager on `dir` whose `versions` are staged in its store (not committed: a first install is a
 * trial) when desired, as their download would, a frame every 10 ms unless `frames` is false, and `o`
 * passed through (clocks, atStep). Staged before they are desired, the agent would delete them at
 * start-up or after an install, as versions nothing needs.
 */
async function harness(dir: string, o: Partial<OtaManagerOptions> & { versions?: string[]; frames?: boolean } = {}): Promise<Harness> {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
  const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { ...factory, manifest: undefined } });
  store.init();
  const stage = (version: string) => {
    if (!existsSync(store.versionDir(version))) stageStandIn(store, version, privateKey);
  };
  const reports: OtaReport[] = [];
  const steps: Harness['steps'] = {};
  const link = fakeOtaLink(reports);
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, openDetector: async () => fakeDetector(),
    gate: { minFrames: 5 }, selfTestImage: image, ...o,
    atStep: async (step, v) => { steps[step] = performance.now(); await o.atStep?.(step, v); },
  });
  const detector = await manager.start();
  const timer = o.frames === false ? undefined : setInterval(() => { void detector.detectTimed(image); }, 10);
  return {
    manager, reports, steps,
    desire(version, rev, d = {}) {
      if (o.versions?.includes(version)) stage(version);
      const entry: DesiredModel = { version, healthWindowMs: d.healthWindowMs ?? 300 };
      const payload: DesiredPayload = { v: 1, rev, ts: d.ts ?? Date.now(), models: { detector: entry } };
      link.emit('desired', payload);
    },
    last: () => reports.at(-1),
    async stop() {
      clearInterval(timer);
      await manager.stop();
    },
  };
}

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('ef-ota-manager-', fn);

/** A wall clock that NTP steps by `ms`, 100 ms after `stepSoon` (inside the health window when called at its start). */
function steppedWallClock() {
  let offsetMs = 0;
  return {
    now: () => Date.now() + offsetMs,
    stepSoon: (ms: number) => { setTimeout(() => { offsetMs += ms; }, 100); },
  };
}

const committed = (h: Harness, version: string, timeoutMs = 5000) =>
  waitFor(`${version} committed`, () => { const r = h.last(); return r?.phase === 'committed' && r.version === version ? r : undefined; }, timeoutMs);

test('a wall clock stepped back 1 h during the health window: the window still ends on time; reports keep wall-clock timestamps', async () => {
  await withDir(async (dir) => {
    const wall = steppedWallClock();
    const h = await harness(dir, {
      versions: ['2.0.0'], now: wall.now,
      atStep: (step) => { if (step === 'health') wall.stepSoon(-3_600_000); },
    });
    try {
      h.desire('2.0.0', 1, { healthWindowMs: 300 });
      // On the wall clock the window (and its hard stop at 3× + 5 s) would end an hour from now.
      const r = await committed(h, '2.0.0');
      const lastedMs = h.steps.commit! - h.steps.health!;
      assert.ok(lastedMs >= 300 && lastedMs < 3000, `health window lasted ${lastedMs} ms`);
      assert.ok(Math.abs(r.ts - (Date.now() - 3_600_000)) < 60_000, 'the report is stamped with the (stepped) wall clock');
    } finally {
      await h.stop();
    }
  });
});

test('a wall clock stepped forward 1 h during the health window: the window is not cut short, nor is its hard stop', async () => {
  await withDir(async (dir) => {
    const wall = steppedWallClock();
    const h = await harness(dir, {
      versions: ['2.0.0'], now: wall.now,
      atStep: (step) => { if (step === 'health') wall.stepSoon(3_600_000); },
    });
    try {
      h.desire('2.0.0', 1, { healthWindowMs: 500 });
      await committed(h, '2.0.0');
      const lastedMs = h.steps.commit! - h.steps.health!;
      assert.ok(lastedMs >= 500, `health window lasted ${lastedMs} ms, less than its 500 ms`);
    } finally {
      await h.stop();
    }
  });
  // No frame at all (camera down): the window ends at its hard stop (3× the window + 5 s), timed on the
  // injected monotonic clock, which the test moves on by hand.
  await withDir(async (dir) => {
    const wall = steppedWallClock();
    let monoOffsetMs = 0;
    const h = await harness(dir, {
      versions: ['2.0.0'], frames: false, now: wall.now, monotonicNow: () => performance.now() + monoOffsetMs,
      atStep: (step) => { if (step === 'health') wall.stepSoon(3_600_000); },
    });
    try {
      h.desire('2.0.0', 1, { healthWindowMs: 300 });
      await waitFor('health window', () => h.steps.health);
      // Nothing to wait for: the window must not end in these 500 ms (its hard stop is 5.9 s away on the monotonic clock).
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(h.last()?.phase, 'health', 'still in its health window after the wall clock jumped past the hard stop');
      monoOffsetMs += 6000;
      const r = await committed(h, '2.0.0');
      assert.match(r.reason ?? '', /no frames during the health window/);
    } finally {
      await h.stop();
    }
  });
});

test('a desired state with a lower rev than the one followed (a stale retained message) is ignored, after a restart too', async () => {
  await withDir(async (dir) => {
    const versions = ['2.0.0', '3.0.0'];
    let h = await harness(dir, { versions });
    try {
      const t0 = Date.now() - 60_000;
      h.desire('2.0.0', 1, { ts: t0 });
      await committed(h, '2.0.0');
      h.desire('3.0.0', 2, { ts: t0 + 30_000 });
      await committed(h, '3.0.0');
      // mosquitto restarted from its persistence file re-delivers rev 1.
      const from = h.reports.length;
      h.desire('2.0.0', 1, { ts: t0 });
      await h.manager.idle();
      assert.equal(h.manager.runningVersion, '3.0.0');
      assert.deepEqual(h.reports.slice(from), [], 'nothing installed, nothing reported');
      // The same rev again (a server republishing after a broker reconnect) is still followed.
      h.desire('3.0.0', 2, { ts: Date.now() });
      await h.manager.idle();
      assert.equal(h.last()?.version, '3.0.0');

      await h.stop();
      h = await harness(dir, { versions });
      assert.equal(h.manager.runningVersion, '3.0.0');
      h.desire('2.0.0', 1, { ts: t0 });
      await h.manager.idle();
      assert.equal(h.manager.runningVersion, '3.0.0', 'the rev followed was kept across the restart');
      assert.ok(h.reports.every((r) => r.version !== '2.0.0'), JSON.stringify(h.reports));
    } finally {
      await h.stop();
    }
  });
});

test('a lower rev stamped well after the one followed (a fleet server whose database was reset) is followed; a fresh device follows any rev', async () => {
  await withDir(async (dir) => {
    const h = await harness(dir, { versions: ['2.0.0', '3.0.0'] });
    try {
      const t0 = Date.now() - 3_600_000;
      // A fresh device (nothing persisted) follows the first desired state, whatever its rev.
      h.desire('3.0.0', 57, { ts: t0 });
      await committed(h, '3.0.0');
      // Rev 1 from a reset server, but stamped within the margin: taken for a stale one.
      h.desire('2.0.0', 1, { ts: t0 + 60_000 });
      await h.manager.idle();
      assert.equal(h.manager.runningVersion, '3.0.0');
      // Stamped well after the last one followed: the reset server is followed, and its revs from then on.
      h.desire('2.0.0', 1, { ts: t0 + DESIRED_RESET_MIN_GAP_MS + 60_000 });
      await committed(h, '2.0.0');
      h.desire('3.0.0', 2, { ts: t0 + DESIRED_RESET_MIN_GAP_MS + 120_000 });
      await committed(h, '3.0.0');
    } finally {
      await h.stop();
    }
  });
});

test('a version committed here before that cannot be installed now (its copy damaged, no manifest to fetch it) is refused once, not retried every retryDelayMs', async () => {
  await withDir(async (dir) => {
    const h = await harness(dir, { versions: ['2.0.0', '3.0.0'], retryDelayMs: 20 });
    try {
      h.desire('2.0.0', 1);
      await committed(h, '2.0.0');
      h.desire('3.0.0', 2);
      await committed(h, '3.0.0');
      writeFileSync(join(h.manager.store.versionDir('2.0.0'), 'model.onnx'), 'damaged');
      const from = h.reports.length;
      // A rollback to 2.0.0 whose desired state carries no manifest (the registry lost the artifact).
      h.desire('2.0.0', 3);
      const r = await waitFor('2.0.0 refused', () => { const x = h.last(); return x?.version === '2.0.0' && x.phase === 'refused' ? x : undefined; });
      assert.equal(r.code, 'E_DESIRED');
      // Nothing to wait for: no retry may come (20 ms retry delay, 15 periods).
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(h.reports.slice(from).filter((x) => x.phase === 'refused').length, 1, JSON.stringify(h.reports.slice(from)));
      assert.equal(h.manager.runningVersion, '3.0.0');
      assert.equal(h.manager.store.failureOf(undefined, '2.0.0'), undefined, 'a version that proved itself here is never held as failed');
      // The next desired message tries it again (still refused: nothing changed).
      h.desire('2.0.0', 4);
      await waitFor('refused again', () => h.reports.slice(from).filter((x) => x.phase === 'refused').length === 2);
    } finally {
      await h.stop();
    }
  });
});

test('the device log says when a model is swapped in and when it is committed, not only the fleet server', async () => {
  await withDir(async (dir) => {
    const logs: Array<{ level: number; msg: string; version?: string; previous?: string }> = [];
    const h = await harness(dir, { versions: ['2.0.0'], logger: pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as typeof logs[number]); } }) });
    try {
      h.desire('2.0.0', 1);
      await committed(h, '2.0.0');
      const said = logs.filter((l) => l.level === 30 && l.version === '2.0.0').map((l) => `${l.msg}${l.previous ? ` / ${l.previous}` : ''}`);
      assert.deepEqual(said, ['model 2.0.0 swapped in; health window started / 1.0.0', 'model 2.0.0 committed']);
      // The same desired state again changes nothing, and logs nothing as if it had.
      h.desire('2.0.0', 2);
      await h.manager.idle();
      assert.equal(logs.filter((l) => l.version === '2.0.0').length, 2);
    } finally {
      await h.stop();
    }
  });
});
