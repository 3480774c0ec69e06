/**
 * One camera whose source gives up (reconnect.maxRetries spent) stopped every camera and the agent:
 * at a site with 8 cameras one dead camera blinded the other 7. It is now down on its own; the run
 * fails only when no camera is left, or on an error that is no one camera's (a sink, the detector).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { agentConfigValidator, type CameraConfig } from '../../agent/src/config/schema.js';
import { AgentRunner, type RunSummary } from '../../agent/src/pipeline/agent-runner.js';
import { nullDetector, fakeSource } from '../helpers/runner-fakes.js';
import { CaptureError } from '../../agent/src/util/errors.js';

function logCapture() {
  const lines: Array<{ level: number; msg: string; camera?: string }> = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  return { log: pino({ level: 'info' }, sink), lines };
}

function runner(plan: Record<string, { frames: number; fail?: string }>, onFrame?: (cameraId: string) => void) {
  const config = agentConfigValidator.parse({
    detector: { model: '/m/model.onnx' },
    cameras: Object.keys(plan).map((id) => ({ source: { kind: 'test', id, width: 32, height: 24 } })),
  }, 'test config');
  const { log, lines } = logCapture();
  const r = new AgentRunner({
    config, detector: nullDetector, log,
    sourceFor: (c: CameraConfig) => fakeSource(c.source.id, plan[c.source.id]),
    sinks: { onFrame: (f) => onFrame?.(f.cameraId) },
  });
  return { r, lines };
}

const byId = (s: RunSummary, id: string) => s.cameras.find((c) => c.cameraId === id)!;

test('a camera that gives up is down on its own: the other cameras run to their end and the run succeeds', async () => {
  const { r, lines } = runner({
    lobby: { frames: 40 },
    gate: { frames: 2, fail: 'Could not open resource for reading and writing. (gave up after 2 restarts)' },
    yard: { frames: 30 },
  });
  const s = await r.run();
  assert.equal(s.ok, true);
  assert.equal(s.error, undefined);
  assert.equal(byId(s, 'lobby').processed, 40, 'lobby ran to its end');
  assert.equal(byId(s, 'yard').processed, 30, 'yard ran to its end');
  assert.equal(byId(s, 'lobby').status, 'ended');
  assert.equal(byId(s, 'gate').status, 'failed');
  assert.equal(byId(s, 'gate').processed, 2);
  assert.match(byId(s, 'gate').lastError ?? '', /Camera source "gate" failed: .*gave up after 2 restarts/);
  const down = lines.filter((l) => l.camera === 'gate' && l.level === 50);
  assert.equal(down.length, 1, 'the camera going down is logged once, as an error');
  assert.match(down[0].msg, /camera gate is down .*the other 2 cameras go on/);
  await r.stop();
});

test('when every camera has failed the run fails with E_CAPTURE, naming each camera', async () => {
  const { r } = runner({ lobby: { frames: 3, fail: 'no route to host' }, gate: { frames: 1, fail: 'connection refused' } });
  const err = await r.run().then(() => undefined, (e: unknown) => e as CaptureError & { summary: RunSummary });
  assert.ok(err, 'the run rejects');
  assert.equal(err.code, 'E_CAPTURE');
  assert.match(err.message, /Every camera failed \(2\): .*"gate" failed: connection refused/);
  assert.match(err.message, /"lobby" failed: no route to host/);
  assert.equal(err.summary.ok, false);
  assert.deepEqual(err.summary.cameras.map((c) => c.status), ['failed', 'failed']);
  await r.stop();
});

test('a single camera that gives up still ends the run with its own error, as before', async () => {
  const { r } = runner({ gate: { frames: 2, fail: 'connection refused (gave up after 2 restarts)' } });
  await assert.rejects(r.run(), (e: CaptureError) => e.code === 'E_CAPTURE' && e.message === 'Camera source "gate" failed: connection refused (gave up after 2 restarts)');
  await r.stop();
});

test('an error that is no one camera\'s (a sink that throws) still stops every camera', async () => {
  let seen = 0;
  const { r } = runner({ lobby: { frames: 1000 }, gate: { frames: 1000 } }, (id) => {
    if (id === 'gate' && ++seen === 3) throw new Error('disk full');
  });
  const err = await r.run().then(() => undefined, (e: unknown) => e as Error & { summary: RunSummary });
  assert.equal(err?.message, 'disk full');
  assert.ok(byId(err.summary, 'lobby').processed < 1000, 'lobby was stopped');
  await r.stop();
});

test('the reason a camera is down is reported without the credentials of its URL', async () => {
  const { r, lines } = runner({ lobby: { frames: 20 }, gate: { frames: 0, fail: 'Could not open rtsp://admin:hunter2@10.0.0.9/s (gave up after 1 restart)' } });
  const s = await r.run();
  assert.equal(byId(s, 'gate').lastError, 'Camera source "gate" failed: Could not open rtsp://***@10.0.0.9/s (gave up after 1 restart)');
  assert.doesNotMatch(JSON.stringify(lines), /hunter2/);
  await r.stop();
});
