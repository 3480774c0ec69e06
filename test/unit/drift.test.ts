import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DriftMonitor, frameStats } from '../../agent/src/telemetry/drift.js';
import { Telemetry } from '../../agent/src/telemetry/telemetry.js';
import type { RgbImage } from '../../agent/src/types.js';

/** A 64x48 frame of a gradient with noise around `level` (deterministic LCG). */
function frame(level: number, seed: number): RgbImage {
  const w = 64; const h = 48; const data = new Uint8Array(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < w * h; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const v = Math.max(0, Math.min(255, level + ((i % w) - 32) + ((s >>> 24) % 21) - 10));
    data[i * 3] = v; data[i * 3 + 1] = v; data[i * 3 + 2] = v;
  }
  return { width: w, height: h, data };
}

test('frameStats: luma mean and standard deviation', () => {
  const s = frameStats({ width: 2, height: 1, data: new Uint8Array([0, 0, 0, 255, 255, 255]) }, 1);
  assert.ok(Math.abs(s.brightness - 127.5) < 1e-6);
  assert.ok(Math.abs(s.contrast - 127.5) < 1e-6);
});

test('drift: steady frames do not flag; shifted brightness does', () => {
  const steady = new DriftMonitor({ baselineSize: 100, windowSize: 100 });
  const shifted = new DriftMonitor({ baselineSize: 100, windowSize: 100 });
  for (let i = 0; i < 100; i++) {
    const level = 110 + (i % 20);
    steady.observeFrame(frame(level, i));
    shifted.observeFrame(frame(level, i));
  }
  for (let i = 100; i < 200; i++) {
    steady.observeFrame(frame(110 + (i % 20), i));
    shifted.observeFrame(frame(110 + (i % 20) + 60, i));
  }
  const a = steady.report();
  const b = shifted.report();
  console.log(`drift PSI brightness: steady ${a.psi.brightness}, shifted ${b.psi.brightness} (threshold ${b.threshold})`);
  assert.equal(a.baselineReady, true);
  assert.equal(a.flagged, false, JSON.stringify(a.psi));
  assert.equal(b.flagged, true);
  assert.ok(b.flags.includes('brightness'));
  assert.ok((b.current.brightnessMean ?? 0) > (a.current.brightnessMean ?? 0) + 50);
});

test('drift: confidence and class mix shifts flag; too few samples never flag', () => {
  const d = new DriftMonitor({ baselineSize: 50, windowSize: 50, minSamples: 50 });
  const dets = (label: string, score: number) => Array.from({ length: 10 }, () => ({ label, score }));
  for (let i = 0; i < 20; i++) d.observeDetections(dets(i % 2 ? 'person' : 'car', 0.8 + (i % 5) * 0.03));
  assert.equal(d.report().flagged, false, 'baseline only');
  for (let i = 0; i < 10; i++) d.observeDetections(dets('dog', 0.35));
  const r = d.report();
  assert.ok(r.flags.includes('confidence'), JSON.stringify(r.psi));
  assert.ok(r.flags.includes('classMix'));
  assert.equal(r.current.classMix.dog, 1);
});

test('telemetry snapshot: stage percentiles, frame counters, drift and Prometheus text', async () => {
  const t = new Telemetry({ intervalMs: 1000, drift: { baselineSize: 5, windowSize: 5, minSamples: 5 } });
  t.start();
  for (let i = 1; i <= 100; i++) t.recordStage('infer', i);
  t.recordFrame({ kind: 'in' });
  t.recordFrame({ kind: 'processed', detected: true });
  t.recordFrame({ kind: 'dropped', reason: 'queue-full' });
  t.setModelVersions({ detector: '1.2.0' });
  for (let i = 0; i < 10; i++) t.observeFrameStats(frame(100, i));
  const s = await t.snapshot();
  t.stop();
  assert.equal(s.frames.dropped['queue-full'], 1);
  assert.equal(s.stages.infer.count, 100);
  assert.ok(Math.abs(s.stages.infer.p50Ms - 50) <= 2, `p50 ${s.stages.infer.p50Ms}`);
  assert.ok(Math.abs(s.stages.infer.p99Ms - 99) <= 2, `p99 ${s.stages.infer.p99Ms}`);
  assert.equal(s.models.detector, '1.2.0');
  assert.equal(s.drift.baselineReady, true);
  const text = await t.registry.metrics();
  assert.match(text, /ef_stage_latency_ms\{quantile="0.95",stage="infer"\}/);
  assert.match(text, /ef_frames_dropped_total\{reason="queue-full"\} 1/);
});

// Past the schema's limits (100 classes, 32 zones) every telemetry message was refused by the server,
// and the device sent none at all: a detector of over 100 classes, a board with 40 thermal zones.
test('telemetry stays within the protocol: the 100 most frequent classes, the 32 hottest thermal zones', async () => {
  const { decodePayload } = await import('../../agent/src/protocol/index.js');
  const { readTemperaturesC } = await import('../../agent/src/telemetry/system.js');
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const root = mkdtempSync(join(tmpdir(), 'ef-thermal-'));
  try {
    for (let z = 0; z < 40; z++) {
      mkdirSync(join(root, `thermal_zone${z}`));
      writeFileSync(join(root, `thermal_zone${z}`, 'type'), `zone${z}-therm\n`);
      writeFileSync(join(root, `thermal_zone${z}`, 'temp'), `${30000 + z * 1000}\n`);
    }
    const temps = readTemperaturesC(root) ?? {};
    assert.equal(Object.keys(temps).length, 32);
    assert.equal(temps['zone39-therm'], 69, 'the hottest kept');
    assert.equal(temps['zone0-therm'], undefined, 'the coolest dropped');
    const d = new DriftMonitor({ baselineSize: 10, windowSize: 2000, minSamples: 10 });
    for (let c = 159; c >= 0; c--) d.observeDetections(Array.from({ length: c < 5 ? 20 : 1 }, () => ({ label: `class-${c}`, score: 0.9 })));
    const r = d.report();
    assert.equal(Object.keys(r.current.classMix).length, 100);
    for (let c = 0; c < 5; c++) assert.ok(r.current.classMix[`class-${c}`] !== undefined, 'the most frequent kept');
    const t = new Telemetry({ intervalMs: 1000 });
    t.start();
    const s = await t.snapshot();
    t.stop();
    const msg = { ...s, temperatureC: temps, drift: r };
    const decoded = decodePayload('telemetry', JSON.stringify(msg));
    assert.equal(decoded.ok, true, JSON.stringify(decoded));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
