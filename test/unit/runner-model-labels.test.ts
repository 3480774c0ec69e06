/**
 * check-config refuses a rule class that the configured model does not have, but a model that arrives
 * later over the air may have other labels: the runner warns at load and at each model switch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { AgentRunner, type DetectorHandle } from '../../agent/src/pipeline/agent-runner.js';
import { SwappableDetector } from '../../agent/src/ota/swappable-detector.js';

function standIn(name: string, version: string, labels: string[]): DetectorHandle {
  return {
    meta: { name, version, labels, decoder: { kind: 'centernet' } },
    provider: 'cpu',
    session: { info: { fallbacks: [] } },
    detectTimed: () => Promise.resolve({ detections: [], timings: {} }),
    close: () => Promise.resolve(),
  } as unknown as DetectorHandle;
}

function capture(): { log: pino.Logger; warnings: () => Array<{ path: string; name: string; model: string; msg: string }> } {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  const log = pino({ level: 'warn' }, sink);
  return { log, warnings: () => lines.map((l) => JSON.parse(l) as { path: string; name: string; model: string; msg: string }) };
}

const config = agentConfigValidator.parse({
  deviceId: 'cam-01',
  detector: { model: '/m/model.onnx', labels: ['person', 'car'] },
  cameras: [{
    source: { kind: 'test', width: 640, height: 480 },
    rules: { rules: [{ type: 'zone', id: 'yard', polygon: [{ x: 10, y: 10 }, { x: 600, y: 10 }, { x: 600, y: 400 }], classes: ['car'] }] },
  }],
}, 'test config');

test('a model that lacks a configured class is warned about at load and when OTA switches to it', async () => {
  const { log, warnings } = capture();
  const detector = new SwappableDetector(standIn('coco', '1.0.0', ['person', 'car']), '1.0.0');
  const runner = new AgentRunner({ config, detector: detector as unknown as DetectorHandle, log });
  await runner.start();
  assert.deepEqual(warnings(), [], 'the configured model has every class: no warning');

  await detector.swap(standIn('people-only', '2.0.0', ['person']), '2.0.0', { keepFallback: true });
  await new Promise((r) => setImmediate(r));
  const w = warnings();
  assert.deepEqual(w.map((x) => [x.path, x.name, x.model]).sort(), [
    ['/cameras/0/rules/rules/0/classes/0', '"car"', 'people-only@2.0.0'],
    ['/detector/labels/1', '"car"', 'people-only@2.0.0'],
  ]);
  assert.match(w[0].msg, /nothing of that class is tracked or alerted while this model runs/);

  await detector.revert();
  await new Promise((r) => setImmediate(r));
  assert.equal(warnings().length, 2, 'back on a model with every class: nothing more');
  await detector.close();
});
