/**
 * A model run whose scores are NaN (an FP16 overflow, a damaged engine) is a broken run, not an empty
 * scene. Each decoder used to read it as one or the other silently: `NaN >= t` is false, so CenterNet,
 * CenterNet heads and DB dropped every NaN score ("nothing here"), while `NaN < t` is false too, so
 * YOLO v5 and BlazeFace passed them on as detections with NaN scores. Each now throws E_MODEL_OUTPUT
 * naming the output and the count; finite outputs decode as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createDecoder, type OutputMap } from '../../agent/src/decode/index.js';
import type { DecoderSpec } from '../../agent/src/decode/spec.js';
import { modelMetadataValidator } from '../../agent/src/model/metadata.js';
import { letterboxTransform } from '../../agent/src/preprocess/transform.js';

const common = { scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 100 };
const ctx = (w: number, h: number, outputNames: string[] = []) => ({ transform: letterboxTransform({ srcWidth: w, srcHeight: h, dstWidth: w, dstHeight: h }), labels: ['person', 'car'], outputNames });
const broken = (output: string, nan: number, total: number) => ({ code: 'E_MODEL_OUTPUT', message: new RegExp(`^Model output "${output.replace(/[/.]/g, '\\$&')}" is broken: ${nan} of the ${total} scores read are NaN`) });

/** Fills `data` with a finite pattern, then NaN at `nanAt`. */
function tensor(dims: number[], fill: (i: number) => number, nanAt: number[] = []): { dims: number[]; data: Float32Array } {
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_v, i) => fill(i));
  for (const i of nanAt) data[i] = Number.NaN;
  return { dims, data };
}

interface Case { name: string; spec: DecoderSpec; outputs: (nanAt: number[]) => OutputMap; ctx: ReturnType<typeof ctx>; nanAt: number[]; output: string; total: number }

const bf = modelMetadataValidator.parse(JSON.parse(readFileSync('configs/models/blazeface-back.meta.json', 'utf8')), 'blazeface-back metadata');

const CASES: Case[] = [
  {
    // [1, 4+2, 8]: boxes 10×10 at (20, 20), class scores 0.1 except NaN at the given indices.
    name: 'yolo v8', spec: { type: 'yolo', version: 'v8', classAgnosticNms: false, ...common }, ctx: ctx(64, 64, ['out']), output: 'out', total: 16,
    outputs: (nanAt) => ({ out: tensor([1, 6, 8], (i) => (i < 16 ? 20 : i < 32 ? 10 : 0.1), nanAt) }), nanAt: [32 + 3, 40 + 5],
  },
  {
    // [1, 8, 5+2]: objectness NaN on one row; every objectness below the threshold, so no class score is read.
    name: 'yolo v5', spec: { type: 'yolo', version: 'v5', classAgnosticNms: false, ...common }, ctx: ctx(64, 64, ['out']), output: 'out', total: 8,
    outputs: (nanAt) => ({ out: tensor([1, 8, 7], (i) => ([20, 20, 10, 10, 0.1, 0.1, 0.1][i % 7]), nanAt) }), nanAt: [2 * 7 + 4],
  },
  {
    name: 'centernet', spec: { type: 'centernet', ...common }, ctx: ctx(64, 64, ['tower_0/detections']), output: 'tower_0/detections', total: 10,
    outputs: (nanAt) => ({ 'tower_0/detections': tensor([1, 10, 6], (i) => ([4, 4, 20, 20, 0.05, 0][i % 6]), nanAt) }), nanAt: [4, 6 * 3 + 4, 6 * 9 + 4],
  },
  {
    name: 'centernet-heads', spec: { type: 'centernet-heads', heatmap: 'hm', boxes: 'wh', layout: 'nhwc', stride: 4, topK: 100, ...common }, ctx: ctx(32, 32), output: 'hm', total: 8 * 8 * 2,
    outputs: (nanAt) => ({ hm: tensor([1, 8, 8, 2], () => 0.01, nanAt), wh: tensor([1, 8, 8, 4], () => 2) }), nanAt: [17],
  },
  {
    name: 'blazeface', spec: bf.decoder, ctx: { ...ctx(256, 256), labels: ['face'] }, output: 'Identity:0, Identity_1:0', total: 896,
    outputs: (nanAt) => ({
      'Identity:0': tensor([1, 512, 1], () => -10, nanAt), 'Identity_1:0': tensor([1, 384, 1], () => -10),
      'Identity_2:0': tensor([1, 512, 16], () => 0), 'Identity_3:0': tensor([1, 384, 16], () => 0),
    }), nanAt: [100, 101],
  },
  {
    name: 'db', spec: { type: 'db', binaryThreshold: 0.3, boxThreshold: 0.5, unclipRatio: 1.6, minSizePx: 3, maxDetections: 100 }, ctx: { ...ctx(32, 32, ['map']), labels: ['text'] }, output: 'map', total: 1024,
    outputs: (nanAt) => ({ map: tensor([1, 1, 32, 32], () => 0.05, nanAt) }), nanAt: [5, 600, 1000],
  },
];

for (const c of CASES) {
  test(`${c.name}: NaN scores throw E_MODEL_OUTPUT naming the output and the count; finite ones decode to nothing here`, () => {
    const decode = createDecoder(c.spec);
    assert.deepEqual(decode(c.outputs([]), c.ctx), [], 'the finite outputs: every score below the threshold');
    assert.throws(() => decode(c.outputs(c.nanAt), c.ctx), broken(c.output, c.nanAt.length, c.total));
  });
}

const notFinite = (output: string) => ({ code: 'E_MODEL_OUTPUT', message: new RegExp(`^Model output "${output}" is broken: 1 detection\\(s\\) above the threshold have a score, class or box that is not finite`) });

test('a detection above the threshold whose box or class is not finite is a broken run too', () => {
  const decode = createDecoder({ type: 'centernet', ...common });
  const rows = [[4, 4, Number.NaN, 20, 0.9, 0], [4, 4, 20, 20, 0.8, 1]];
  const run = () => decode({ d: { dims: [1, 2, 6], data: Float32Array.from(rows.flat()) } }, ctx(64, 64, ['d']));
  assert.throws(run, notFinite('d'));
  rows[0][2] = 20;
  assert.deepEqual(run().map((d) => d.label), ['person', 'car']);
  rows[1][5] = Number.NaN; // a NaN class id read as label "classNaN"
  assert.throws(run, notFinite('d'));
});

test('yolo: an overflow to Infinity is a broken run: Infinity × 0 in v5, an Infinity score in v8', () => {
  const v5 = createDecoder({ type: 'yolo', version: 'v5', classAgnosticNms: false, ...common });
  const row = [20, 20, 10, 10, Number.POSITIVE_INFINITY, 0, 0];
  assert.throws(() => v5({ out: { dims: [1, 1, 7], data: Float32Array.from(row) } }, ctx(64, 64, ['out'])), broken('out', 1, 3));
  const v8 = createDecoder({ type: 'yolo', version: 'v8', classAgnosticNms: false, ...common });
  // [1, 4+2, 1]: cx, cy, w, h, then class scores Infinity and 0.
  assert.throws(() => v8({ out: { dims: [1, 6, 1], data: Float32Array.from([20, 20, 10, 10, Number.POSITIVE_INFINITY, 0]) } }, ctx(64, 64, ['out'])), notFinite('out'));
  assert.equal(v8({ out: { dims: [1, 6, 1], data: Float32Array.from([20, 20, 10, 10, 0.9, 0]) } }, ctx(64, 64, ['out'])).length, 1);
});
