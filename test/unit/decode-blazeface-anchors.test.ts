import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ssdAnchors } from '../../agent/src/decode/blazeface.js';
import { createDecoder } from '../../agent/src/decode/index.js';
import { modelMetadataValidator } from '../../agent/src/model/metadata.js';
import { letterboxTransform } from '../../agent/src/preprocess/transform.js';

const meta = modelMetadataValidator.parse(JSON.parse(readFileSync('configs/models/blazeface-back.meta.json', 'utf8')), 'blazeface-back metadata');

test('back-model anchors: 16x16x2 + 8x8x6 = 896, cell centres at (i + 0.5) / grid', () => {
  assert.equal(meta.decoder.type, 'blazeface');
  if (meta.decoder.type !== 'blazeface') return;
  const { anchors: a, groupSizes } = ssdAnchors({ inputWidth: 256, inputHeight: 256, ...meta.decoder.anchors });
  assert.equal(a.length, 896);
  assert.deepEqual(groupSizes, [512, 384]);
  assert.deepEqual(a[0], { cx: 0.5 / 16, cy: 0.5 / 16 });
  assert.deepEqual(a[1], a[0]); // two anchors per cell share the centre
  assert.deepEqual(a[2], { cx: 1.5 / 16, cy: 0.5 / 16 });
  assert.deepEqual(a[511], { cx: 15.5 / 16, cy: 15.5 / 16 });
  assert.deepEqual(a[512], { cx: 0.5 / 8, cy: 0.5 / 8 });
  assert.deepEqual(a[517], a[512]);
  assert.deepEqual(a[518], { cx: 1.5 / 8, cy: 0.5 / 8 });
  assert.deepEqual(a[895], { cx: 7.5 / 8, cy: 7.5 / 8 });
});

test('one face planted at a known anchor decodes to its box and key points in source pixels', () => {
  if (meta.decoder.type !== 'blazeface') return;
  const s0 = new Float32Array(512).fill(-10), s1 = new Float32Array(384).fill(-10);
  const b0 = new Float32Array(512 * 16), b1 = new Float32Array(384 * 16);
  // Coarse grid cell (row 3, col 5), second anchor: index 512 + (3*8+5)*6 + 1 → local 175.
  const local = (3 * 8 + 5) * 6 + 1;
  s1[local] = 2; // sigmoid(2) ≈ 0.881
  // Regressors in model pixels relative to the anchor centre (5.5*32, 3.5*32) = (176, 112).
  b1.set([4, -8, 64, 80, 0, 0, 10, 0, -10, 0, 0, 20, 0, 0, 0, 0], local * 16);
  // Same face, slightly shifted, on a neighbouring anchor with a lower score: weighted NMS merges it.
  s1[local - 1] = 0;
  b1.set([4, -8, 64, 80, 0, 0, 10, 0, -10, 0, 0, 20, 0, 0, 0, 0], (local - 1) * 16);
  // Source 512x256 letterboxed into 256x256: scale 0.5, padY 64.
  const t = letterboxTransform({ srcWidth: 512, srcHeight: 256, dstWidth: 256, dstHeight: 256 });
  const dec = createDecoder(meta.decoder);
  const dets = dec({ 'Identity:0': { dims: [1, 512, 1], data: s0 }, 'Identity_1:0': { dims: [1, 384, 1], data: s1 },
    'Identity_2:0': { dims: [1, 512, 16], data: b0 }, 'Identity_3:0': { dims: [1, 384, 16], data: b1 } },
  { transform: t, labels: meta.labels, outputNames: [] });
  assert.equal(dets.length, 1);
  const d = dets[0];
  assert.equal(d.label, 'face');
  assert.ok(Math.abs(d.score - 1 / (1 + Math.exp(-2))) < 1e-9);
  // Model box: centre (180, 104), 64x80 → x 148..212, y 64..144 → source x 296..424, y 0..160.
  const want = { x: 296, y: 0, w: 128, h: 160 };
  for (const k of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(d.box[k] - want[k]) < 1e-6, `${k}: ${d.box[k]} vs ${want[k]}`);
  assert.equal(d.keypoints!.length, 6);
  // Right eye at model (176, 112) → source (352, 96); mouth at model (176, 132) → (352, 136).
  assert.ok(Math.abs(d.keypoints![0].x - 352) < 1e-6 && Math.abs(d.keypoints![0].y - 96) < 1e-6);
  assert.ok(Math.abs(d.keypoints![3].y - 136) < 1e-6 && Math.abs(d.keypoints![2].x - 332) < 1e-6);
});

test('an anchor grid that does not match the outputs is a ModelError', () => {
  if (meta.decoder.type !== 'blazeface') return;
  const dec = createDecoder({ ...meta.decoder, anchors: { strides: [16, 32], anchorsPerCell: [2, 2] } });
  const t = letterboxTransform({ srcWidth: 256, srcHeight: 256, dstWidth: 256, dstHeight: 256 });
  const z = (n: number) => new Float32Array(n);
  assert.throws(() => dec({ 'Identity:0': { dims: [1, 512, 1], data: z(512) }, 'Identity_1:0': { dims: [1, 384, 1], data: z(384) },
    'Identity_2:0': { dims: [1, 512, 16], data: z(512 * 16) }, 'Identity_3:0': { dims: [1, 384, 16], data: z(384 * 16) } },
  { transform: t, labels: ['face'], outputNames: [] }), { code: 'E_MODEL' });
});

const z = (n: number) => new Float32Array(n);
const square = letterboxTransform({ srcWidth: 256, srcHeight: 256, dstWidth: 256, dstHeight: 256 });

test('output pairs listed out of stride order are a ModelError naming the outputs, not faces in the wrong places', () => {
  if (meta.decoder.type !== 'blazeface') return;
  const outputs = { 'Identity:0': { dims: [1, 512, 1], data: z(512) }, 'Identity_1:0': { dims: [1, 384, 1], data: z(384) },
    'Identity_2:0': { dims: [1, 512, 16], data: z(512 * 16) }, 'Identity_3:0': { dims: [1, 384, 16], data: z(384 * 16) } };
  const reversed = createDecoder({ ...meta.decoder, scoreOutputs: ['Identity_1:0', 'Identity:0'], boxOutputs: ['Identity_3:0', 'Identity_2:0'] });
  assert.throws(() => reversed(outputs, { transform: square, labels: ['face'], outputNames: [] }),
    (err: Error & { code?: string }) => err.code === 'E_MODEL' && /Identity_1:0/.test(err.message) && /512/.test(err.message) && /order of decoder\.anchors\.strides/.test(err.message));
  // Scores in order but boxes swapped: each box output must hold its score output's anchors.
  const boxesSwapped = createDecoder({ ...meta.decoder, boxOutputs: ['Identity_3:0', 'Identity_2:0'] });
  assert.throws(() => boxesSwapped(outputs, { transform: square, labels: ['face'], outputNames: [] }),
    (err: Error & { code?: string }) => err.code === 'E_MODEL' && /Identity_3:0/.test(err.message));
});

test('one output pair holding every stride group (single-output exports) still decodes', () => {
  if (meta.decoder.type !== 'blazeface') return;
  const scores = z(896).fill(-10), boxes = z(896 * 16);
  // Coarse grid cell (row 3, col 5), first anchor: 512 + (3*8+5)*6; centre (176, 112) in model pixels.
  const i = 512 + (3 * 8 + 5) * 6;
  scores[i] = 3;
  boxes.set([0, 0, 32, 32], i * 16);
  const dec = createDecoder({ ...meta.decoder, scoreOutputs: ['scores'], boxOutputs: ['boxes'] });
  const dets = dec({ scores: { dims: [1, 896, 1], data: scores }, boxes: { dims: [1, 896, 16], data: boxes } },
    { transform: square, labels: ['face'], outputNames: [] });
  assert.equal(dets.length, 1);
  assert.deepEqual(dets[0].box, { x: 160, y: 96, w: 32, h: 32 });
});
