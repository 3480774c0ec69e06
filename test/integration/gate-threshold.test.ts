/**
 * The accuracy gate judges what a device reports at the metadata's score threshold, not only the
 * ranking. The gate decoded the candidate at half the threshold for mAP, so a CenterNet whose heatmap
 * is scaled ×0.8 (every score lower, every rank kept) passed with "drop 0.00" while a device lost a
 * quarter of its detections. Now the F1 of the candidate's detections at the threshold against the
 * reference's is reported and gated too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { floatTensor } from '../../fleet-server/src/convert/onnx/model.js';

const SRC = 'assets/models/coco-centernet';
const VIDEO = 'assets/video/vtest.avi';
const dir = mkdtempSync(join(tmpdir(), 'ef-gate-threshold-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const missing = [join(SRC, 'model.onnx'), VIDEO].filter((p) => !existsSync(p));
const skip = missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false;

/** The CenterNet with its class heatmap (sigmoid scores, before the decoding tail) multiplied by k. */
function scaledHeatmap(k: number): string {
  const m = decodeModel(new Uint8Array(readFileSync(join(SRC, 'model.onnx'))));
  const heatmap = 'tower_0/keypoints';
  const producer = m.graph.nodes.find((n) => n.outputs.includes(heatmap));
  assert.ok(producer, `${heatmap} is produced by a node`);
  producer.outputs = producer.outputs.map((o) => (o === heatmap ? `${heatmap}_raw` : o));
  m.graph.initializers.set('heatmap_scale', floatTensor([], [k]));
  m.graph.nodes.splice(m.graph.nodes.indexOf(producer) + 1, 0, { opType: 'Mul', name: 'heatmap_scale', inputs: [`${heatmap}_raw`, 'heatmap_scale'], outputs: [heatmap], attributes: [] });
  const out = join(dir, `scaled-${k}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model.onnx'), encodeModel(m));
  copyFileSync(join(SRC, 'model.meta.json'), join(out, 'model.meta.json'));
  return join(out, 'model.onnx');
}

interface EvaluateJson {
  ok: boolean;
  decision: { pass: boolean; reason: string; mapDrop: number; f1Drop: number };
  report: { mapDrop: number; atThreshold: { scoreThreshold: number; referenceDetections: number; candidateDetections: number; matched: number; recall: number; precision: number; f1Drop: number } };
}

test('scores that all sink keep mAP but lose detections at the threshold: evaluate and publish refuse the build', { skip, timeout: 180_000 }, async () => {
  const scaled = scaledHeatmap(0.8);
  const ev = await runCli('fleetctl', ['model', 'evaluate', '--reference', join(SRC, 'model.onnx'), '--candidate', scaled, '--data', VIDEO, '--json'], { timeoutMs: 120_000 });
  assert.equal(ev.code, 1, ev.stderr);
  const e = JSON.parse(ev.stdout.trim().split('\n').pop()!) as EvaluateJson;
  assert.equal(e.ok, false);
  assert.ok(e.report.mapDrop <= 1, `mAP cannot see it (drop ${e.report.mapDrop})`);
  const t = e.report.atThreshold;
  assert.equal(t.scoreThreshold, 0.3);
  assert.ok(t.referenceDetections > 100, `${t.referenceDetections} reference detections`);
  assert.ok(t.recall < 85 && t.precision > 95, `a device loses detections and gains none: recall ${t.recall}, precision ${t.precision}`);
  assert.ok(t.f1Drop > 3 && e.decision.f1Drop === t.f1Drop, `F1 drop ${t.f1Drop}`);
  assert.match(e.decision.reason, /^F1 drop at score ≥ 0\.3 \d+\.\d\d > 3 points \(the candidate reports \d+ detections where the reference reports \d+/);

  // The text report shows the figure; publish refuses the build and writes nothing.
  const text = await runCli('fleetctl', ['model', 'evaluate', '--reference', join(SRC, 'model.onnx'), '--candidate', scaled, '--data', VIDEO, '--frames', '6'], { timeoutMs: 120_000 });
  assert.match(text.stdout, /\n {2}at score ≥ 0\.3: F1 \d+\.\d\d \(recall \d+\.\d, precision \d+\.\d; \d+ ref, \d+ cand, \d+ matched at IoU 0\.5\)\n/);
  assert.match(text.stdout, /FAIL: F1 drop/);
  const out = join(dir, 'published');
  // On the 6 frames the text report read (--frames as model evaluate takes it; the default is 24).
  const p = await runCli('fleetctl', ['model', 'publish', '--model', scaled, '--precision', 'int8', '--reference', join(SRC, 'model.onnx'), '--data', VIDEO, '--frames', '6', '--out', out], { timeoutMs: 120_000 });
  assert.equal(p.code, 1, p.stdout);
  assert.match(p.stderr, /refused: F1 drop at score ≥ 0\.3 .* over 6 frames; .*\noffer instead: fp16, fp32/);
  assert.ok(!existsSync(out), 'nothing written for a refused build');
  // A limit the operator raises lets it through, with both figures in gate.json (on the default frames).
  const raised = await runCli('fleetctl', ['model', 'publish', '--model', scaled, '--precision', 'int8', '--reference', join(SRC, 'model.onnx'), '--data', VIDEO, '--max-f1-drop', '50', '--out', out], { timeoutMs: 120_000 });
  assert.equal(raised.code, 0, raised.stderr);
  const gate = JSON.parse(readFileSync(join(out, 'gate.json'), 'utf8')) as { decision: { pass: boolean; f1Drop: number; maxF1Drop: number; reason: string } };
  assert.equal(gate.decision.pass, true);
  assert.match(gate.decision.reason, / over 24 frames$/, 'without --frames the gate reads its default 24');
  assert.equal(gate.decision.maxF1Drop, 50);
  assert.ok(gate.decision.f1Drop > 3);
});
