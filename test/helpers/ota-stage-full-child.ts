/**
 * Child of test/unit/ota-disk-full-retries.test.ts, run in a private mount namespace with argv[2] a
 * small tmpfs: an OTA install whose disk fills up at the stage step (the whole artifact downloaded and
 * verified; a filler file takes the last free byte), then has the filler removed. Prints one JSON line
 * with what it saw.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { signManifest } from '../../agent/src/protocol/manifest.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import { fakeDetector } from './ota-fakes.js';
import { chunkServingLink } from './ota-chunk-link.js';
import { standInManifest } from './ota-store.js';
import { waitFor } from './wait.js';

const dir = process.argv[2]!;
const image = { width: 2, height: 2, data: new Uint8Array(12) };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
writeFileSync(join(dir, 'factory.onnx'), 'factory');
const reports: OtaReport[] = [];
const link = chunkServingLink(reports);
let chunkRequests = 0;
const serve = link.publishRaw as (topic: string, payload: string) => boolean;
link.publishRaw = ((topic: string, payload: string) => { chunkRequests += 1; return serve(topic, payload); }) as never;
const filler = join(dir, 'filler');
let filled = false;
const m = new OtaManager({
  link: link as never, stateDir: join(dir, 'state'), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  factory: { modelPath: join(dir, 'factory.onnx'), version: '1.0.0', name: 'standin' }, openDetector: async () => fakeDetector(),
  selfTestImage: image, gate: { windowMs: 20, minFrames: 0 }, retryDelayMs: 50,
  atStep: (step) => {
    if (step !== 'stage' || filled) return;
    filled = true;
    const s = statfsSync(dir);
    writeFileSync(filler, Buffer.alloc(s.bavail * s.bsize));
  },
});
await m.start();
const manifest = standInManifest('2.0.0');
link.emit('desired', { v: 1, rev: 1, ts: Date.now(), models: { detector: { version: '2.0.0', manifest, signature: signManifest(manifest, privateKey) } } });
const failed = await waitFor('the failed stage', () => reports.find((r) => r.version === '2.0.0' && r.phase !== 'downloading' && r.phase !== 'verifying' && r.phase !== 'staging'));
const versions = readdirSync(join(m.store.root, 'versions'));
const part = m.store.partPath(manifest);
const partBytes = existsSync(part) ? statSync(part).size : -1;
const requestsBefore = chunkRequests;
rmSync(filler);
const done = await waitFor('the outcome after the disk was freed', () => reports.find((r) => r.version === '2.0.0' && (r.phase === 'committed' || r.phase === 'refused')));
const out = { failed, versions, partBytes, size: manifest.size, requestsBefore, requestsAfter: chunkRequests, done: done.phase, running: m.runningVersion };
await m.stop();
process.stdout.write(`${JSON.stringify(out)}\n`);
