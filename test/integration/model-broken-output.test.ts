/**
 * A model whose outputs are NaN (an FP16 overflow, a damaged engine) read as an empty scene: the
 * decoders dropped NaN scores. Pushed over the air to a camera whose scene was empty (a night, a
 * closed site) it passed the self-test and the health window ("output sanity" compares with the
 * previous model's detections, and there were none) and was committed, blind. Now the run fails with
 * E_MODEL_OUTPUT: through the inference worker with its code, in the OTA self-test (refused, the
 * previous model keeps running), and in the camera pipeline, where the committed model's broken runs
 * are counted and logged while the camera goes on. The publish gate refuses such a build with the
 * reason (it scored it as a build that finds nothing, which said less).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { pino } from 'pino';
import { startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn, type StandInKind } from '../helpers/ota-models.js';
import { startOtaAgent, type OtaTestAgent } from '../helpers/ota-agent.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { runCli } from '../helpers/cli.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { CameraPipeline } from '../../agent/src/pipeline/camera-pipeline.js';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { ModelOutputError } from '../../agent/src/util/errors.js';
import { runGate } from '../../fleet-server/src/quantize/gate.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import type { Detection, Frame } from '../../agent/src/types.js';

const gray = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) };

test('a NaN-scoring model fails its run with E_MODEL_OUTPUT through the inference worker', async () => {
  await withTempDir('ef-broken-output-', async (dir) => {
    const nan = writeStandIn(join(dir, 'nan'), { name: 'standin', version: '2.0.0', kind: 'nan' });
    const good = writeStandIn(join(dir, 'good'), { name: 'standin', version: '1.0.0', kind: 'good' });
    const adapter = new OrtAdapter();
    const det = await Detector.open({ modelPath: join(nan, 'model.onnx'), adapter });
    const ok = await Detector.open({ modelPath: join(good, 'model.onnx'), adapter });
    try {
      await assert.rejects(det.detectTimed(gray), (err: Error & { code?: string }) => {
        assert.ok(err instanceof ModelOutputError, `${err.name}: ${err.message}`);
        assert.equal(err.code, 'E_MODEL_OUTPUT');
        assert.match(err.message, /Model output "detections" is broken: 4 of the 4 scores read are NaN/);
        return true;
      });
      assert.equal((await ok.detectTimed(gray)).detections.length, 4, 'the same model with finite scores detects');
    } finally {
      await det.close();
      await ok.close();
    }
  });
});

test('the accuracy gate refuses a candidate whose output is broken, naming the frame; evaluate reports it', async () => {
  await withTempDir('ef-broken-output-', async (dir) => {
    const ref = writeStandIn(join(dir, 'fp32'), { name: 'standin', version: '1.0.0', kind: 'good' });
    const cand = writeStandIn(join(dir, 'int8'), { name: 'standin', version: '1.0.0', kind: 'nan' });
    const { decision, report } = await runGate({ reference: join(ref, 'model.onnx'), candidate: join(cand, 'model.onnx'), data: { source: 'assets/images/faces', maxFrames: 2 } });
    assert.equal(report.frames, 2);
    assert.equal(report.candidateBroken?.frames, 2);
    assert.equal(decision.pass, false);
    assert.match(decision.reason, /^the candidate's output is broken on 2 of 2 frames \(frame 0: Model output "detections" is broken: 4 of the 4 scores read are NaN.*\); publish the FP32 artifact instead \(or the FP16 one once it passes this gate: model publish --precision fp16 with --reference and --data\)/);
    assert.deepEqual(decision.offer, ['fp16', 'fp32']);
    // As fleetctl model evaluate prints it: no SNR figure for the NaN output, the broken frames named, FAIL.
    const ev = await runCli('fleetctl', ['model', 'evaluate', '--reference', join(ref, 'model.onnx'), '--candidate', join(cand, 'model.onnx'), '--data', 'assets/images/faces', '--frames', '2']);
    assert.equal(ev.code, 1, ev.stderr);
    assert.match(ev.stdout, /SNR detections: none: the candidate's output holds NaN\n {2}broken output on 2 of 2 frames: frame 0: Model output "detections" is broken/);
    assert.match(ev.stdout, /^FAIL: the candidate's output is broken on 2 of 2 frames/m);
    // A broken --compare build is named too (it scores as finding nothing, which alone says less).
    const cmp = await runCli('fleetctl', ['model', 'evaluate', '--reference', join(ref, 'model.onnx'), '--candidate', join(ref, 'model.onnx'), '--data', 'assets/images/faces', '--frames', '2', '--compare', join(cand, 'model.onnx')]);
    assert.equal(cmp.code, 0, cmp.stderr);
    assert.match(cmp.stdout, /\ncompared with \S+: agreement mAP@0\.5 0\.00, -100\.0 points against the candidate .*\n {2}its output was broken on 2 of 2 frames \(scored as finding nothing there\): frame 0: Model output "detections" is broken/);
    // The same model against itself: nothing broken, nothing to say.
    const same = await runGate({ reference: join(ref, 'model.onnx'), candidate: join(ref, 'model.onnx'), data: { source: 'assets/images/faces', maxFrames: 2 } });
    assert.equal(same.report.candidateBroken, undefined);
    assert.equal(same.decision.pass, true, same.decision.reason);
  });
});

let fleet: TestFleet | undefined;
let agent: OtaTestAgent | undefined;
after(async () => { await agent?.stop(); await fleet?.stop(); });

/** Publishes a stand-in of `kind` as `version`, makes it the device's desired detector, and waits for the device's outcome. */
async function pushStandIn(f: TestFleet, deviceId: string, version: string, kind: StandInKind, healthWindowMs: number): Promise<OtaReport> {
  const dir = writeStandIn(join(f.dir, 'src', version), { name: 'standin', version, kind });
  await publishModelDir(f.server.ota.registry, f.server.ota.key.privateKey, { dir });
  const a = f.server.ota.registry.artifact('standin', version, 'onnx-cpu')!;
  f.server.ota.desired.set(deviceId, 'detector', { version, manifest: a.manifest, signature: a.signature, healthWindowMs });
  return waitFor(`the outcome of ${version}`, () => {
    const o = (f.server.devices.get(deviceId)?.reported as { ota?: OtaReport } | undefined)?.ota;
    return o?.version === version && ['refused', 'rolled-back', 'committed'].includes(o.phase) ? o : undefined;
  }, 20_000);
}

test('pushed to a camera whose scene is empty, a NaN-scoring model is refused at its self-test; the previous model keeps running', async () => {
  fleet = await startFleet({ broker: 'aedes' });
  const dev = fleet.addDevice('cam-nan');
  // The running model finds nothing (an empty scene): output sanity has no detections to compare with.
  const factoryDir = writeStandIn(join(fleet.dir, 'factory'), { name: 'standin', version: '1.0.0', kind: 'empty' });
  agent = await startOtaAgent(fleet, dev, { factoryDir, factoryVersion: '1.0.0', gate: { minFrames: 3 } });
  try {
    const outcome = await pushStandIn(fleet, dev.id, '2.0.0', 'nan', 300);
    assert.deepEqual([outcome.phase, outcome.code], ['refused', 'E_SELF_TEST'], JSON.stringify(outcome));
    assert.match(outcome.reason ?? '', /scores read are NaN/);
    assert.equal(agent.manager.runningVersion, '1.0.0');
    assert.equal(agent.frames.errors, 0, 'no frame failed');
  } finally {
    // Its frame loop would otherwise run inference every 20 ms through the file's other tests.
    await agent.stop();
    agent = undefined;
  }
});

test('a model that passes its self-test and breaks on later frames (dark ones) is rolled back by its health window, no frame lost', async () => {
  fleet ??= await startFleet({ broker: 'aedes' });
  const dev = fleet.addDevice('cam-nan-dark');
  const factoryDir = writeStandIn(join(fleet.dir, 'factory-dark'), { name: 'standin', version: '1.0.0', kind: 'empty' });
  // Bright frames until the new model has passed its self-test; dark ones (night falls) from its swap on.
  let dark = false;
  const darkImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(20) };
  const night = await startOtaAgent(fleet, dev, {
    factoryDir, factoryVersion: '1.0.0', gate: { minFrames: 3 }, image: () => (dark ? darkImage : gray),
    atStep: (step) => { if (step === 'swap') dark = true; },
  });
  try {
    const outcome = await pushStandIn(fleet, dev.id, '3.0.0', 'nan-dark', 2000);
    assert.deepEqual([outcome.phase, outcome.code], ['rolled-back', 'E_HEALTH'], JSON.stringify(outcome));
    assert.match(outcome.reason ?? '', /the new model failed on \d+ frame\(s\) \(allowed 0\): .*Model output "detections" is broken: 4 of the 4 scores read are NaN/);
    assert.equal(night.manager.runningVersion, '1.0.0');
    assert.equal(night.frames.errors, 0, 'the previous model answered the broken frames');
  } finally {
    await night.stop();
  }
});

test('the committed model\'s broken runs: the camera goes on, tracks are predicted, then dropped as across a gap; counted and logged at 1, 10, 100', async () => {
  const config = agentConfigValidator.parse({
    detector: { model: '/models/m.onnx' },
    cameras: [{ source: { kind: 'rtsp', url: 'rtsp://10.0.0.21/s', id: 'gate' } }],
    schedule: { mode: 'fixed', interval: 1, motion: { enabled: false } },
  }, 'test config');
  const lines: Array<{ level: number; msg: string; brokenRuns?: number }> = [];
  const seen: Array<Array<[string, number]>> = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  const person: Detection = { classId: 0, label: 'person', score: 0.9, box: { x: 10, y: 10, w: 20, h: 40 } };
  const N = 120;
  const stats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  let calls = 0;
  const pipeline = new CameraPipeline({
    camera: config.cameras[0], schedule: config.schedule, tracker: config.tracker, log: pino({ level: 'info' }, sink),
    sinks: { onFrame: (r) => { seen[r.frame.index] = r.tracks.map((t) => [t.source, t.hits]); } },
    // Frames 0-4 are fine (a person), then every run is broken, until the last 10 frames.
    detector: { detectTimed: async () => {
      calls += 1;
      if (calls > 5 && calls <= N - 10) throw new ModelOutputError('Model output "detections" is broken: 4 of the 4 scores read are NaN');
      return { detections: [person], timings: { preprocessMs: 0, inferMs: 1, decodeMs: 0 } };
    } },
    source: {
      stats,
      async *frames() {
        for (let i = 0; i < N; i++) {
          stats.framesIn++;
          yield { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3), index: i, ptsNs: i * 1e8, capturedAtNs: i * 1e8, sourceId: 'gate' } as Frame;
        }
      },
    },
  });
  const s = await pipeline.run();
  assert.equal(s.processed, N, 'every frame went through');
  assert.equal(s.detected, 15, 'only the good runs count as detected');
  assert.equal(s.brokenRuns, N - 15);
  const logged = lines.filter((l) => l.msg.startsWith("the detector's output was broken"));
  assert.deepEqual(logged.map((l) => [l.level, l.brokenRuns]), [[50, 1], [50, 10], [50, 100]]);
  assert.match(logged[0].msg, /camera gate .*scores read are NaN/);
  // The person is detected on frames 0-4, predicted through the broken runs for as long as tracks
  // are predicted (tracker.maxPredictFrames, 15 at interval 1), then dropped as across a camera gap.
  assert.deepEqual(seen.slice(0, 5).map((f) => f.map(([source]) => source)), Array(5).fill(['detected']));
  assert.deepEqual(seen.slice(5, 20).map((f) => f.map(([source]) => source)), Array(15).fill(['predicted']));
  assert.deepEqual(seen.slice(20, N - 10), Array(N - 30).fill([]));
  // Working again: the person is a new track (its first hit), not the one held unmatched through the streak.
  assert.deepEqual(seen[N - 10], [['detected', 1]]);
  const dropped = lines.filter((l) => l.msg.includes('its tracks and their rule state are dropped'));
  assert.deepEqual(dropped.map((l) => [l.level, l.msg.slice(0, 69)]), [[40, "the detector's output has been broken since frame 5 of camera gate: i"]]);
});
