/**
 * The agent compares desired revs within one epoch (the server's rev counter, a new one per server
 * database): a reset server database starts its revs at 1 again, and the device took them for stale
 * retained messages for 10 minutes (DESIRED_RESET_MIN_GAP_MS), so a rollout created then timed out.
 * A stale message of the same epoch is still ignored; a message without an epoch (a server before
 * epochs) keeps the rule of before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { DESIRED_RESET_MIN_GAP_MS, OtaManager } from '../../agent/src/ota/ota-manager.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { DesiredPayload } from '../../agent/src/protocol/index.js';
import type { DesiredModel, OtaReport } from '../../agent/src/protocol/ota.js';
import { waitFor } from '../helpers/wait.js';
import { fakeDetector, fakeOtaLink } from '../helpers/ota-fakes.js';
import { stageStandIn } from '../helpers/ota-store.js';
import { withTempDir } from '../helpers/temp-dir.js';

const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const VERSIONS = ['2.0.0', '3.0.0', '4.0.0'];

/** An OTA manager on `dir` whose versions are staged when desired (as a download would), fed a frame every 10 ms. */
async function device(dir: string) {
  writeFileSync(join(dir, 'factory.onnx'), 'factory');
  const factory = { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' };
  const store = new ArtifactStore({ stateDir: join(dir, 'state'), role: 'detector', publicKeyPem, factory: { ...factory, manifest: undefined } });
  store.init();
  const reports: OtaReport[] = [];
  const logs: { msg: string }[] = [];
  const link = fakeOtaLink(reports);
  const manager = new OtaManager({
    link: link as never, stateDir: join(dir, 'state'), publicKeyPem, factory, openDetector: async () => fakeDetector(),
    gate: { minFrames: 5 }, selfTestImage: image,
    logger: pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as { msg: string }); } }),
  });
  const detector = await manager.start();
  const timer = setInterval(() => { void detector.detectTimed(image); }, 10);
  return {
    manager, logs,
    desire(version: string, rev: number, ts: number, epoch?: string) {
      if (VERSIONS.includes(version) && !existsSync(store.versionDir(version))) stageStandIn(store, version, privateKey);
      const entry: DesiredModel = { version, healthWindowMs: 300 };
      const payload: DesiredPayload = { v: 1, rev, ts, ...(epoch !== undefined ? { epoch } : {}), models: { detector: entry } };
      link.emit('desired', payload);
    },
    running: async (version: string) => {
      await waitFor(`${version} committed`, () => { const r = reports.at(-1); return r?.phase === 'committed' && r.version === version; }, 5000);
    },
    /** The version it runs once the desired message just sent was handled (followed or ignored). */
    settled: async () => { await manager.idle(); return manager.runningVersion; },
    async stop() {
      clearInterval(timer);
      await manager.stop();
    },
  };
}

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('ef-desired-epoch-', fn);

test('a lower rev of another epoch (a reset server database) is followed at once; a stale message of the old epoch is not, nor is one of the same epoch', async () => {
  await withDir(async (dir) => {
    const d = await device(dir);
    try {
      const t0 = Date.now() - 3_600_000;
      d.desire('2.0.0', 7, t0, 'db-old');
      await d.running('2.0.0');
      d.desire('3.0.0', 8, t0 + 1000, 'db-old');
      await d.running('3.0.0');
      // The same epoch: a lower rev stamped within the margin is a stale retained message.
      d.desire('2.0.0', 7, t0 + 60_000, 'db-old');
      assert.equal(await d.settled(), '3.0.0');
      // The database was reset a minute later: rev 1 of a new epoch, well within the margin.
      d.desire('4.0.0', 1, t0 + 2 * 60_000, 'db-new');
      await d.running('4.0.0');
      // A broker restored from its persistence file re-delivers the old server's last state (sent before).
      d.desire('3.0.0', 8, t0 + 1000, 'db-old');
      assert.equal(await d.settled(), '4.0.0', 'a stale message of the old epoch, higher rev or not');
      d.desire('3.0.0', 8, t0 + 1000, 'db-old');
      assert.equal(await d.settled(), '4.0.0');
      // The new server's revs compare among themselves from now on.
      d.desire('2.0.0', 2, t0 + 3 * 60_000, 'db-new');
      await d.running('2.0.0');
      d.desire('4.0.0', 1, t0 + 2 * 60_000, 'db-new');
      assert.equal(await d.settled(), '2.0.0');
      const said = (re: RegExp) => d.logs.filter((l) => re.test(l.msg)).length;
      assert.equal(said(/new fleet server database/), 1, 'the new epoch is logged once');
      assert.equal(said(/from another fleet server database/), 1, 'the re-delivered stale message is logged once');
    } finally {
      await d.stop();
    }
  });
});

test('the epoch followed is kept with the rev across a restart', async () => {
  await withDir(async (dir) => {
    const t0 = Date.now() - 3_600_000;
    let d = await device(dir);
    try {
      d.desire('2.0.0', 5, t0, 'db-a');
      await d.running('2.0.0');
      await d.stop();
      d = await device(dir);
      assert.equal(d.manager.runningVersion, '2.0.0');
      d.desire('3.0.0', 4, t0 + 60_000, 'db-a');
      assert.equal(await d.settled(), '2.0.0', 'the same epoch: a lower rev is still stale after the restart');
      // Another epoch: followed at once, which it is only if the epoch followed was kept.
      d.desire('3.0.0', 1, t0 + 60_000, 'db-b');
      await d.running('3.0.0');
    } finally {
      await d.stop();
    }
  });
});

test('without an epoch (a server or a followed state from before epochs) a lower rev is followed only when stamped well after the one followed', async () => {
  await withDir(async (dir) => {
    const d = await device(dir);
    try {
      const t0 = Date.now() - 3_600_000;
      d.desire('2.0.0', 7, t0);
      await d.running('2.0.0');
      // The server is upgraded, its revs go on: the followed state has no epoch, the message one.
      d.desire('3.0.0', 6, t0 + 60_000, 'db-a');
      assert.equal(await d.settled(), '2.0.0', 'a lower rev within the margin, as before');
      d.desire('3.0.0', 8, t0 + 60_000, 'db-a');
      await d.running('3.0.0');
      // A message without an epoch against a followed one with an epoch: the rule of before too.
      d.desire('2.0.0', 7, t0 + 2 * 60_000);
      assert.equal(await d.settled(), '3.0.0');
      d.desire('4.0.0', 1, t0 + 60_000 + DESIRED_RESET_MIN_GAP_MS + 1);
      await d.running('4.0.0');
    } finally {
      await d.stop();
    }
  });
});
