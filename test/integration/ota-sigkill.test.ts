/**
 * SIGKILL at each install step that touches disk or the running model: mid-download, staging,
 * during the health window (new model swapped in, not committed), at commit, and right after
 * commit. The killed process is a real child; the agent restarted on the same state dir must start
 * on the old or the new model, both verified against their signed manifests, never on a
 * half-written one, and then converge.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { openInProcess, startOtaAgent } from '../helpers/ota-agent.js';
import { waitFor } from '../helpers/wait.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import type { ArtifactRecord } from '../../fleet-server/src/registry/model-registry.js';
import { grayImage } from '../helpers/ota-models.js';
import { tsEntry } from '../helpers/repo.js';

let fleet: TestFleet;
let factoryDir: string;
let publicKeyPath: string;
let artifact: ArtifactRecord;

before(async () => {
  fleet = await startFleet({ broker: 'aedes' });
  factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0' });
  // ~2.4 MB so that a mid-download kill leaves a partial file (the weight is never multiplied in: one layer).
  const dir = writeStandIn(join(fleet.dir, 'src', '2.0.0'), { name: 'standin', version: '2.0.0', kind: 'slow', slowLayers: 1 });
  artifact = (await publishModelDir(fleet.server.ota.registry, fleet.server.ota.key.privateKey, { dir })).record;
  publicKeyPath = join(fleet.dir, 'fleet.pub');
  writeFileSync(publicKeyPath, fleet.server.ota.key.publicKeyPem);
});
after(async () => { await fleet?.stop(); });

interface ChildRun { lines: Record<string, string>[]; signal: NodeJS.Signals | null; code: number | null }

/** Runs the child until it exits (it SIGKILLs itself at its step). */
function runChild(opts: Record<string, unknown>, timeoutMs = 30_000): Promise<ChildRun> {
  const child = spawn(process.execPath, [...tsEntry('test/helpers/ota-child.ts'), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EF_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d; });
  const lines: Record<string, string>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ota child timed out; lines ${JSON.stringify(lines)}; stderr ${stderr.slice(-1500)}`)); }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      const v = JSON.parse(l) as Record<string, string>;
      lines.push(v);
    });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ lines, signal, code }); });
  });
}

for (const step of ['download-mid', 'stage', 'health', 'commit', 'committed'] as const) {
  test(`SIGKILL at ${step}: the agent restarts on the old or the new model, verified, and converges`, async () => {
    const dev = fleet.addDevice(`cam-kill-${step}`);
    const stateDir = join(fleet.dir, 'agents', dev.id);
    const base = { deviceId: dev.id, secret: dev.secret, url: fleet.mqttUrl, stateDir, factoryDir, publicKeyPath };
    fleet.server.ota.desired.set(dev.id, 'detector', { version: '2.0.0', manifest: artifact.manifest, signature: artifact.signature, healthWindowMs: 200 });
    const killed = await runChild({ ...base, killAt: step });
    assert.equal(killed.signal, 'SIGKILL', `killed at ${step}: ${JSON.stringify(killed.lines)}`);
    // What a restart will load: the committed version, re-verified (size + sha256 + signature).
    const store = new ArtifactStore({ stateDir, role: 'detector', publicKeyPem: fleet.server.ota.key.publicKeyPem, factory: { version: '1.0.0', modelPath: join(factoryDir, 'model.onnx'), manifest: undefined } });
    store.init();
    const current = await store.current();
    assert.ok(current && ['1.0.0', '2.0.0'].includes(current.version), `current after kill at ${step}: ${current?.version}`);
    if (step === 'committed') assert.equal(current.version, '2.0.0');
    if (step === 'download-mid' || step === 'stage') assert.equal(current.version, '1.0.0');
    const det = await openInProcess(current.modelPath);
    assert.ok((await det.detectTimed(grayImage())).detections.length > 0, 'the model on disk runs');
    await det.close();
    // The restarted agent (in this process: same OtaManager code on the same state dir) starts on
    // that model and converges to the desired 2.0.0.
    const again = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', stateDir, gate: { minFrames: 3 } });
    try {
      assert.equal(again.manager.runningVersion, current.version);
      await waitFor('converged to 2.0.0', () => again.manager.runningVersion === '2.0.0', 20_000);
    } finally {
      await again.stop();
    }
    process.stdout.write(`ota-sigkill: killed at ${step} → restarted on ${current.version} → converged to 2.0.0\n`);
  });
}
