/**
 * The retained `state` of an agent that goes down on a failure (a hung inference run: E_INFER_TIMEOUT)
 * said only `online: false`; its `health` now says why, and the next start's online state says ok
 * again (the server's registry keeps the last health it was given). Real broker (embedded aedes), and
 * a real `edge-agent run` whose camera cannot start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { retainedState } from '../helpers/retained-state.js';
import { startFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { InferenceTimeoutError } from '../../platform-adapters/worker-calls.js';
import { runCli } from '../helpers/cli.js';
import { gstSkip } from '../helpers/gst-child.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';

test('an agent that exits on a hung inference leaves a retained offline state whose health says why; its next start says ok', async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-hang');
  const link = fleet.agentLink(dev);
  link.start();
  await link.waitConnected(10_000);
  await waitFor('online', () => fleet.server.devices.get(dev.id)?.online === true);

  link.reportFailure(new InferenceTimeoutError('Inference on /opt/edge-agent/models/det.onnx', 20_000));
  await link.stop();
  const state = await retainedState(fleet, dev);
  assert.equal(state.online, false);
  assert.equal(state.health?.status, 'failed');
  assert.equal(state.health?.reasons.length, 1);
  assert.match(state.health!.reasons[0], /^E_INFER_TIMEOUT: Inference on \/opt\/edge-agent\/models\/det\.onnx did not answer within 20000 ms/);
  assert.ok(state.health!.reasons[0].length <= 200);
  const record = await waitFor('offline with the reason in the registry', () => {
    const d = fleet.server.devices.get(dev.id);
    return d?.online === false && d.health?.status === 'failed' ? d : undefined;
  });
  assert.match(record.health!.reasons[0], /^E_INFER_TIMEOUT: /);

  // Restarted: online, and the failure of the previous run no longer shows.
  const again = fleet.agentLink(dev);
  again.start();
  await again.waitConnected(10_000);
  await waitFor('online and ok again', () => {
    const d = fleet.server.devices.get(dev.id);
    return d?.online === true && d.health?.status === 'ok';
  });
  // A clean stop (no failure reported) says nothing of a failure.
  await again.stop();
  const clean = await retainedState(fleet, dev);
  assert.equal(clean.online, false);
  assert.equal(clean.health, undefined);
});

const MODEL = resolve('assets/models/coco-centernet/model.onnx');

test('edge-agent run that fails (a camera that cannot start) leaves a retained offline state whose health names the failure', { skip: gstSkip || missingAssets(MODEL) }, async (t) => {
  const fleet = await startFleet({ broker: 'aedes' });
  t.after(() => fleet.stop());
  const dev = fleet.addDevice('cam-fail');
  const dir = tempDirForFile('ef-link-fail-');
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({
    deviceId: dev.id,
    stateDir: join(dir, 'state'),
    detector: { model: MODEL },
    link: { url: fleet.mqttUrl },
    privacy: { enabled: false },
    cameras: [{ source: { kind: 'pipeline', id: 'raw', pipeline: 'v4l2src device=/dev/null ! decodebin', reconnect: { maxRetries: 0 } } }],
  }));
  const r = await runCli('edge-agent', ['run', '--config', config], { timeoutMs: 60_000, env: { EF_DEVICE_SECRET: dev.secret } });
  assert.notEqual(r.code, 0, r.stderr);
  const state = await retainedState(fleet, dev);
  assert.equal(state.online, false);
  assert.equal(state.health?.status, 'failed');
  assert.match(state.health?.reasons[0] ?? '', /^E_CAPTURE: Camera source "raw" failed: the pipeline could not start/);
});
