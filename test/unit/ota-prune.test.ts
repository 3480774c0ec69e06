/**
 * The OTA store deletes the version directories it no longer needs: every model update added its full
 * size to the disk for good (an eMMC box with weekly updates filled up). Kept: the running version, the
 * previous one (what a rollback goes to), the newest `keepVersions` committed (default 3), and the
 * desired one unless it failed (at start-up, the one persisted with the desired rev: a trial cut by a
 * restart is tried again from disk). Never the factory model, nor a partial download of the artifact
 * desired. A rollback to a deleted version without a manifest to fetch it again is refused
 * once, not retried in a loop, and not held as failed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtaManager, type OtaManagerOptions } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import type { DesiredModel, OtaReport } from '../../agent/src/protocol/ota.js';
import { waitFor } from '../helpers/wait.js';
import { fakeDetector, fakeOtaLink } from '../helpers/ota-fakes.js';
import { stageStandIn, standInManifest } from '../helpers/ota-store.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

function openStore(dir: string, factoryModelPath = join(dir, 'factory.onnx')): ArtifactStore {
  const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { version: '1.0.0', modelPath: factoryModelPath, manifest: undefined } });
  store.init();
  return store;
}

/** Puts `version` into the store as a download would (staged, not committed). */
const stage = (store: ArtifactStore, version: string) => stageStandIn(store, version, privateKey);
const manifestOf = standInManifest;

/** Commits `versions` in order, each replacing the one before (as installs do). */
function commitInOrder(store: ArtifactStore, versions: string[]): void {
  let previous: string | undefined = '1.0.0';
  for (const v of versions) {
    if (!existsSync(store.versionDir(v))) stage(store, v);
    store.commit(v, previous, manifestOf(v));
    previous = v;
  }
}

/** The version directories in the store, as `ls versions/` shows them (not the store's own listing). */
function onDisk(store: ArtifactStore): string[] {
  return readdirSync(join(store.root, 'versions')).filter((n) => !n.startsWith('.')).sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-ota-prune-'));
  try {
    writeFileSync(join(dir, 'factory.onnx'), 'factory');
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('prune keeps the current and previous versions and the newest N committed; deletes older, failed and unusable ones', async () => {
  await withDir(async (dir) => {
    const store = openStore(dir);
    commitInOrder(store, ['2.0.0', '3.0.0', '4.0.0', '5.0.0', '6.0.0']);
    stage(store, '7.0.0'); // desired, on trial: neither committed nor failed
    stage(store, '8.0.0');
    store.markFailed('standin', '8.0.0', 'E_HEALTH', 'rolled back');
    mkdirSync(store.versionDir('junk')); // no manifest: nothing can load it
    const part = join(store.root, 'downloads', 'standin@9.0.0-onnx-cpu.part');
    writeFileSync(part, 'partial');

    assert.deepEqual((await store.prune({ keepCommitted: 3, desired: { version: '7.0.0' } })).sort(), ['2.0.0', '3.0.0', '8.0.0', 'junk']);
    assert.deepEqual(onDisk(store), ['4.0.0', '5.0.0', '6.0.0', '7.0.0']);
    assert.ok(existsSync(part), 'downloads/ is left alone');
    assert.ok(existsSync(join(dir, 'factory.onnx')), 'the factory model is outside the store');
    // The kept versions still load, verified.
    for (const v of store.installedVersions()) assert.equal((await store.load(v)).version, v);

    // No longer desired, the trial goes; a desired version recorded as failed is not kept (never retried).
    stage(store, '8.0.0');
    assert.deepEqual((await store.prune({ keepCommitted: 3, desired: { version: '8.0.0', name: 'standin' } })).sort(), ['7.0.0', '8.0.0']);
    // Fewer kept: current.json's two always stay.
    assert.deepEqual(await store.prune({ keepCommitted: 1 }), ['4.0.0']);
    assert.deepEqual(onDisk(store), ['5.0.0', '6.0.0']);
    assert.equal(store.committed('4.0.0')?.version, '4.0.0', 'a deleted version is still known as committed here (a rollback to it is no trial)');
  });
});

test('prune keeps the previous version when it is not among the newest committed (after a rollback to an old one)', async () => {
  await withDir(async (dir) => {
    const store = openStore(dir);
    commitInOrder(store, ['2.0.0', '3.0.0', '4.0.0', '5.0.0']);
    // Back to 2.0.0 from 5.0.0, then on to a new 6.0.0: 2.0.0 is the previous one, the oldest committed.
    store.commit('2.0.0', '5.0.0', manifestOf('2.0.0'));
    stage(store, '6.0.0');
    store.commit('6.0.0', '2.0.0', manifestOf('6.0.0'));
    await store.prune({ keepCommitted: 1 });
    assert.deepEqual(onDisk(store), ['2.0.0', '6.0.0']);
  });
});

test('prune never deletes a version directory holding the factory model, and finishes a deletion a crash cut short', async () => {
  await withDir(async (dir) => {
    let store = openStore(dir);
    stage(store, '0.9.0');
    store = openStore(dir, join(store.versionDir('0.9.0'), 'model.onnx'));
    commitInOrder(store, ['2.0.0', '3.0.0']);
    assert.deepEqual(await store.prune({ keepCommitted: 1 }), []);
    assert.deepEqual(onDisk(store), ['0.9.0', '2.0.0', '3.0.0']);

    // A prune killed between its rename and its delete leaves .removing-<v>: never listed, removed at init.
    mkdirSync(join(store.root, 'versions', '.removing-0.5.0'));
    writeFileSync(join(store.root, 'versions', '.removing-0.5.0', 'model.onnx'), 'half deleted');
    assert.ok(!store.installedVersions().includes('.removing-0.5.0'));
    openStore(dir);
    assert.deepEqual(readdirSync(join(store.root, 'versions')).sort(), ['0.9.0', '2.0.0', '3.0.0']);
  });
});

interface Harness {
  manager: OtaManager;
  store: ArtifactStore;
  reports: OtaReport[];
  /** Desires `version` (bare, as a rollback to a version the registry no longer holds). */
  desire(version: string, rev: number): void;
  stop(): Promise<void>;
}

async function harness(dir: string, o: Partial<OtaManagerOptions> = {}): Promise<Harness> {
  const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
  const reports: OtaReport[] = [];
  const link = fakeOtaLink(reports);
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, openDetector: async () => fakeDetector(),
    gate: { minFrames: 3 }, selfTestImage: image, ...o,
  });
  const detector = await manager.start();
  const timer = setInterval(() => { void detector.detectTimed(image); }, 10);
  return {
    manager, store: manager.store, reports,
    desire(version, rev) {
      const entry: DesiredModel = { version, healthWindowMs: 100 };
      link.emit('desired', { v: 1, rev, ts: Date.now(), models: { detector: entry } } satisfies DesiredPayload);
    },
    async stop() {
      clearInterval(timer);
      await manager.stop();
    },
  };
}

const reportFor = (h: Harness, version: string, phase: string) =>
  waitFor(`${version} ${phase}`, () => { const r = h.reports.at(-1); return r?.version === version && r.phase === phase ? r : undefined; }, 5000);

/** Desires and commits each version in turn (staged as its download would be); returns the last rev used. */
async function commitAll(h: Harness, versions: string[]): Promise<number> {
  let rev = 0;
  for (const v of versions) {
    stage(h.store, v);
    h.desire(v, ++rev);
    await reportFor(h, v, 'committed');
  }
  await h.manager.idle();
  return rev;
}

test('each committed update deletes the versions no longer needed: the store holds the 3 newest (default), not every update', async () => {
  await withDir(async (dir) => {
    const h = await harness(dir);
    try {
      const seen: string[][] = [];
      let rev = 0;
      for (const v of ['2.0.0', '3.0.0', '4.0.0', '5.0.0', '6.0.0']) {
        stage(h.store, v); // as its download would
        h.desire(v, ++rev);
        await reportFor(h, v, 'committed');
        await h.manager.idle();
        seen.push(onDisk(h.store));
      }
      assert.deepEqual(seen, [
        ['2.0.0'],
        ['2.0.0', '3.0.0'],
        ['2.0.0', '3.0.0', '4.0.0'],
        ['3.0.0', '4.0.0', '5.0.0'],
        ['4.0.0', '5.0.0', '6.0.0'],
      ]);
      // A rollback to the previous version needs no download: it is kept.
      h.desire('5.0.0', ++rev);
      assert.match((await reportFor(h, '5.0.0', 'committed')).reason ?? '', /was committed here before/);
      await h.manager.idle();
      assert.deepEqual(onDisk(h.store), ['4.0.0', '5.0.0', '6.0.0']);

      // A version refused or rolled back goes at once: it is not retried.
      stage(h.store, '7.0.0');
      h.store.markFailed(undefined, '7.0.0', 'E_HEALTH', 'rolled back');
      h.desire('7.0.0', ++rev);
      await reportFor(h, '7.0.0', 'rolled-back');
      await h.manager.idle();
      assert.deepEqual(onDisk(h.store), ['4.0.0', '5.0.0', '6.0.0']);
    } finally {
      await h.stop();
    }
  });
});

test('ota.keepVersions 1 keeps the running and previous versions only', async () => {
  await withDir(async (dir) => {
    const h = await harness(dir, { keepVersions: 1 });
    try {
      await commitAll(h, ['2.0.0', '3.0.0', '4.0.0']);
      assert.deepEqual(onDisk(h.store), ['3.0.0', '4.0.0']);
    } finally {
      await h.stop();
    }
  });
});

test('at start-up the versions an older agent left are deleted; a trial cut by a stop is kept across the restart and tried from disk; stale partial downloads go once a desired state is handled', async () => {
  await withDir(async (dir) => {
    // The store of an agent that never deleted anything, and kept no committed.json.
    const store = openStore(dir);
    for (const v of ['2.0.0', '3.0.0', '4.0.0', '5.0.0', '6.0.0', '7.0.0', '8.0.0']) stage(store, v);
    writeFileSync(join(store.root, 'current.json'), JSON.stringify({ version: '6.0.0', previous: '5.0.0' }));
    store.markFailed('standin', '8.0.0', 'E_SELF_TEST', 'refused');
    const stalePart = join(store.root, 'downloads', 'standin@9.0.0-onnx-cpu.part');
    writeFileSync(stalePart, 'abandoned');

    let stopping: Promise<void> | undefined;
    let h: Harness | undefined = await harness(dir, { atStep: (step) => { if (step === 'health') stopping ??= h?.stop(); } });
    try {
      assert.equal(h.manager.runningVersion, '6.0.0');
      assert.deepEqual(onDisk(h.store), ['5.0.0', '6.0.0'], 'nothing says the others are needed (the older agent persisted no desired version)');
      assert.ok(existsSync(stalePart), 'at start-up a partial download may be the resume point of the desired artifact');
      // 7.0.0 is desired (staged as its download would) and the agent stops in its health window.
      stage(h.store, '7.0.0');
      h.desire('7.0.0', 1);
      await waitFor('stopped in the health window', () => stopping !== undefined);
      await stopping;
      assert.equal(h.reports.at(-1)?.code, 'E_ABORTED');
      assert.deepEqual(onDisk(h.store), ['5.0.0', '6.0.0', '7.0.0'], 'the desired version is kept for its next try');
      assert.ok(!existsSync(stalePart), 'the partial download of a version not desired is deleted once a desired state is handled');
      h = undefined;

      h = await harness(dir);
      assert.equal(h.manager.runningVersion, '6.0.0');
      assert.deepEqual(onDisk(h.store), ['5.0.0', '6.0.0', '7.0.0'], 'the desired version stays across the restart');
      // The retained desired state again. It names no manifest: the version can only come from disk.
      h.desire('7.0.0', 1);
      const r = await reportFor(h, '7.0.0', 'committed');
      assert.ok(r.health, '7.0.0 had its health window: a first install');
      await h.manager.idle();
      assert.deepEqual(onDisk(h.store), ['6.0.0', '7.0.0']);
    } finally {
      await stopping;
      await h?.stop();
    }
  });
});

test('a rollback to a deleted version with no manifest to download it is refused once: not held as failed, not retried in a loop', async () => {
  await withDir(async (dir) => {
    const h = await harness(dir, { retryDelayMs: 20, keepVersions: 1 });
    try {
      let rev = await commitAll(h, ['2.0.0', '3.0.0', '4.0.0']);
      assert.ok(!onDisk(h.store).includes('2.0.0'));
      const before = h.reports.length;
      h.desire('2.0.0', ++rev);
      const r = await reportFor(h, '2.0.0', 'refused');
      assert.equal(r.code, 'E_DESIRED');
      assert.match(r.reason ?? '', /2\.0\.0 was committed here before but is not installed here any more .* without a signed manifest/);
      // Nothing to wait for: no retry may come (20 ms retry delay, 15 periods).
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(h.reports.slice(before).filter((x) => x.version === '2.0.0').length, 1, JSON.stringify(h.reports.slice(before)));
      assert.equal(h.store.failureOf(undefined, '2.0.0'), undefined);
      assert.equal(h.store.failureOf('standin', '2.0.0'), undefined);
      assert.equal(h.manager.runningVersion, '4.0.0');
    } finally {
      await h.stop();
    }
  });
});
