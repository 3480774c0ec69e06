/**
 * A rollout's gate.waveTimeoutMs, when not given, follows the artifact target its devices fetch: a
 * TensorRT box builds its engine at first load (up to 30 min, the agent allows 35), so a Jetson wave
 * at the 15 min default failed the gate as "timeout: no healthy report" while its boxes were still building.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LOAD_TIMEOUT_MS } from '../../agent/src/config/schema.js';
import { withRolloutFleet, type RolloutFleet } from '../helpers/rollout-fleet.js';

const MIN = 60_000;

async function publishTrt(s: RolloutFleet, version: string): Promise<void> {
  writeFileSync(join(s.dir, `m-${version}-trt.onnx`), `model m ${version} trt`);
  await s.registry.addArtifact({
    file: join(s.dir, `m-${version}-trt.onnx`),
    manifest: { name: 'm', version, target: 'onnx-trt', precision: 'fp16', inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: [], metrics: {} },
  }, s.key.privateKey);
}

test('an onnx-trt rollout without a gate timeout waits 45 min, longer than the agent allows a first load; a given one is kept', async () => {
  await withRolloutFleet(2, async (s) => {
    await publishTrt(s, '2.0.0');
    const { rollout } = s.engine.create({ model: 'm', version: '2.0.0', platform: 'onnx-trt', target: 'devices:d00', waves: [100] });
    assert.equal(rollout.gate.waveTimeoutMs, 45 * MIN);
    assert.ok(rollout.gate.waveTimeoutMs > DEFAULT_LOAD_TIMEOUT_MS, 'above the agent\'s load limit');
    // Still building its engine after 30 min: in progress, not a gate failure.
    s.report('d00', '1.0.0', { phase: 'loading', version: '2.0.0' });
    s.advance(30 * MIN);
    s.engine.tick();
    let st = s.engine.status(rollout.id);
    assert.equal(st.state, 'running');
    assert.equal(st.devices[0]?.status, 'assigned');
    s.report('d00', '2.0.0', { phase: 'committed', version: '2.0.0' });
    s.engine.tick();
    st = s.engine.status(rollout.id);
    assert.equal(st.state, 'completed');
    assert.equal(st.totals.succeeded, 1);

    // The same with only a health window given (what the dashboard sends): still the target's default.
    await publishTrt(s, '3.0.0');
    const health = s.engine.create({ model: 'm', version: '3.0.0', platform: 'onnx-trt', target: 'devices:d01', waves: [100], gate: { healthWindowMs: 30_000 } });
    assert.equal(health.rollout.gate.waveTimeoutMs, 45 * MIN);
    assert.equal(health.rollout.gate.healthWindowMs, 30_000);
    s.engine.abort(health.rollout.id);

    await publishTrt(s, '4.0.0');
    const given = s.engine.create({ model: 'm', version: '4.0.0', platform: 'onnx-trt', target: 'all', waves: [100], gate: { maxFailures: 0, waveTimeoutMs: 20 * MIN } });
    assert.equal(given.rollout.gate.waveTimeoutMs, 20 * MIN, 'an explicit timeout is kept');
  });
});

test('an onnx-cpu rollout without a gate timeout keeps 15 min', async () => {
  await withRolloutFleet(1, async (s) => {
    const { rollout } = s.engine.create({ model: 'm', version: '2.0.0', target: 'all', waves: [100] });
    assert.equal(rollout.platform, 'onnx-cpu');
    assert.equal(rollout.gate.waveTimeoutMs, 15 * MIN);
    s.advance(15 * MIN + 1000);
    s.engine.tick();
    const st = s.engine.status(rollout.id);
    assert.equal(st.state, 'paused');
    assert.match(st.devices[0]?.reason ?? '', /timeout: no healthy report within 900000 ms/);
  });
});
