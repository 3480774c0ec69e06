/**
 * Calibration maths: streaming histograms (counts conserved when the range widens), the TensorRT-style
 * KL threshold search on histograms whose answer is known, percentile and min/max ranges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingHistogram } from '../../fleet-server/src/quantize/histogram.js';
import { KL_TIE_TOLERANCE, klCurve, klDivergence, klThresholdBins } from '../../fleet-server/src/quantize/entropy.js';
import { ENTROPY_MIN_SAMPLES_PER_BIN, rangeFromHistogram } from '../../fleet-server/src/quantize/ranges.js';

test('KL divergence is 0 for equal distributions and positive otherwise', () => {
  assert.equal(klDivergence([1, 2, 3], [2, 4, 6]), 0);
  assert.ok(klDivergence([1, 0, 3], [1, 1, 1]) > 0);
});

test('KL search keeps the whole range of a uniform histogram (nothing to gain by clipping)', () => {
  const hist = new Float64Array(2048).fill(100);
  assert.ok(klThresholdBins(hist, 128) >= 2040, `threshold ${klThresholdBins(hist, 128)}`);
});

test('KL search clips a long sparse tail far below the maximum', () => {
  // Laplacian-like bulk in the first 200 bins, a handful of outliers at the very end.
  const hist = new Float64Array(2048);
  for (let i = 0; i < 200; i++) hist[i] = Math.round(1e6 * Math.exp(-i / 30));
  hist[2047] = 1; hist[1500] = 1;
  const t = klThresholdBins(hist, 128);
  assert.ok(t >= 128 && t < 600, `threshold bins ${t}`);
});

test('KL search is not pulled down by the zero spike of a ReLU output', () => {
  // Half-exponential bulk over the whole range; after a ReLU, most values sit exactly at 0.
  const hist = new Float64Array(2048);
  for (let i = 1; i < 2048; i++) hist[i] = Math.round(1e4 * Math.exp(-i / 300));
  const without = klThresholdBins(hist, 256);
  hist[0] = 5e6;
  // Left in, the spike made the search clip this histogram at bin 511 (a quarter of its range).
  assert.equal(klThresholdBins(hist, 256), without);
  assert.ok(without >= 2000, `threshold bins ${without}`);
});

test('KL search takes the widest threshold within KL_TIE_TOLERANCE of the smallest KL, the argmin with no tolerance', () => {
  // A ReLU-like bulk with a thin tail of large values (a few channels of a feature map): the KL curve
  // is flat over much of the tail.
  const hist = new Float64Array(2048);
  for (let i = 1; i < 2048; i++) hist[i] = Math.round(1e5 * Math.exp(-i / 120) + 30 * Math.exp(-i / 500));
  hist[0] = 1e6;
  const curve = klCurve(hist, 256, 2);
  let best = Infinity, argmin = 0;
  curve.forEach((kl, i) => { if (kl <= best) { best = kl; argmin = i; } });
  assert.equal(klThresholdBins(hist, 256, 2, 0), argmin, 'no tolerance: the argmin (the widest on a tie)');
  const t = klThresholdBins(hist, 256, 2);
  assert.ok(curve[t] <= best * (1 + KL_TIE_TOLERANCE), `KL at ${t} is within the tolerance`);
  for (let i = t + 1; i < curve.length; i++) assert.ok(curve[i] > best * (1 + KL_TIE_TOLERANCE), `no wider threshold (${i}) is within it`);
  assert.ok(t > argmin, `this curve's valley is flat: the tolerance widens ${argmin} to ${t}`);
});

test('entropy keeps min/max for a tensor with too few values to fill the histogram', () => {
  // A squeeze-excite gate: one value per channel per frame, a few thousand in all, one large value.
  const h = new StreamingHistogram(4096);
  const v = Float32Array.from({ length: 3000 }, (_, i) => (i % 300) / 300);
  v[0] = 8;
  h.add(v);
  assert.ok(h.total < ENTROPY_MIN_SAMPLES_PER_BIN * 2048);
  assert.deepEqual(rangeFromHistogram(h, { method: 'entropy', asymmetric: true }), { min: 0, max: 8 });
});

test('streaming histogram conserves counts across widening and merges', () => {
  const h = new StreamingHistogram(512);
  h.add(Float32Array.from({ length: 1000 }, (_, i) => (i % 10) / 10));
  h.add(Float32Array.from({ length: 500 }, (_, i) => -5 + i / 100));
  const other = new StreamingHistogram(512);
  other.add(Float32Array.of(20, -30));
  h.merge(other);
  const sum = h.counts.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1502) < 1e-6, `sum ${sum}`);
  assert.equal(h.total, 1502);
  assert.equal(h.min, -30); assert.equal(h.max, 20);
  assert.ok(h.absMax >= 30);
});

test('minmax, percentile and entropy ranges', () => {
  const h = new StreamingHistogram(4096);
  // A ReLU-like tensor: 0..1 dense, one outlier at 100.
  const v = new Float32Array(100001);
  for (let i = 0; i < 100000; i++) v[i] = (i % 1000) / 1000;
  v[100000] = 100;
  h.add(v);
  assert.deepEqual(rangeFromHistogram(h, { method: 'minmax' }), { min: 0, max: 100 });
  const p = rangeFromHistogram(h, { method: 'percentile', percentile: 99.9 });
  assert.equal(p.min, 0);
  assert.ok(p.max > 0.95 && p.max < 1.2, `percentile max ${p.max}`);
  const e = rangeFromHistogram(h, { method: 'entropy', asymmetric: true });
  assert.equal(e.min, 0);
  // The search starts at numQuantBins (256 of 2048 bins for a one-sided tensor, 12.5 here); the dense
  // part is uniform, so many thresholds come within KL_TIE_TOLERANCE of the smallest divergence and
  // the widest of them wins (21.6 here; the exact argmin is 15.8): the lone 100 is still clipped to a
  // small fraction of itself.
  assert.ok(e.max >= 12.5 && e.max < 25, `entropy max ${e.max}`);
  assert.throws(() => rangeFromHistogram(h, { method: 'percentile', percentile: 0 }), /percentile/);
});

/** The KL curve bin by bin, as the slides' pseudo-code writes it: what klCurve's level sums must equal. */
function klCurveByBin(counts: ArrayLike<number>, numQuantBins: number, stride: number): Float64Array {
  const n = counts.length;
  const kls = new Float64Array(n + 1).fill(Infinity);
  const hist = Float64Array.from(counts);
  hist[0] = hist[1];
  let total = 0;
  for (const h of hist) total += h;
  if (total === 0) return kls;
  for (let i = numQuantBins; i <= n; i += stride) {
    const p = hist.slice(0, i), q = new Float64Array(i);
    for (let k = i; k < n; k++) p[i - 1] += hist[k];
    const per = i / numQuantBins;
    for (let j = 0; j < numQuantBins; j++) {
      const start = Math.floor(j * per), end = j === numQuantBins - 1 ? i : Math.floor((j + 1) * per);
      let sum = 0, nonzero = 0;
      for (let k = start; k < end; k++) { sum += hist[k]; if (hist[k] !== 0) nonzero++; }
      for (let k = start; k < end; k++) q[k] = hist[k] !== 0 ? sum / nonzero : 0;
    }
    kls[i] = klDivergence(p, q, i);
  }
  return kls;
}

test('the KL curve summed by level equals the bin-by-bin KL, and picks the same thresholds', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const cases: Array<{ name: string; hist: Float64Array; levels: number; stride: number }> = [];
  // A ReLU output re-binned as its range widened (fractional counts), a few empty bins, a sparse tail.
  const relu = new Float64Array(2048);
  for (let i = 0; i < 2048; i++) relu[i] = i < 900 ? 3e5 * Math.exp(-i / 90) * (0.5 + rand()) : (rand() < 0.02 ? rand() * 3 : 0);
  relu[0] = 4e7;
  cases.push({ name: 'relu', hist: relu, levels: 128, stride: 2 });
  // Signed activations folded: a Gaussian-like bulk, every bin filled.
  const bulk = Float64Array.from({ length: 1024 }, (_, i) => 1e4 * Math.exp(-((i / 200) ** 2)) + rand());
  cases.push({ name: 'bulk', hist: bulk, levels: 128, stride: 1 });
  // A huge count beside tiny fractional ones: merged levels whose q falls under the 1e-10 smoothing.
  const spike = new Float64Array(2048);
  for (let i = 0; i < 2048; i++) spike[i] = rand() < 0.3 ? rand() * 0.1 : 0;
  spike[1] = 1e12; spike[3] = 5e11;
  cases.push({ name: 'spike', hist: spike, levels: 256, stride: 2 });
  const uniform = new Float64Array(2048).fill(100);
  cases.push({ name: 'uniform', hist: uniform, levels: 128, stride: 1 });
  for (const c of cases) {
    const fast = klCurve(c.hist, c.levels, c.stride), slow = klCurveByBin(c.hist, c.levels, c.stride);
    let worst = 0;
    for (let i = 0; i < slow.length; i++) {
      if (slow[i] === Infinity) { assert.equal(fast[i], Infinity, `${c.name} ${i}`); continue; }
      // Both carry float rounding (the bin-by-bin sum goes to -5e-11 where P = Q; KL is never below 0); measured
      // here within 1e-13 of each other where KL is not tiny.
      const exact = Math.max(0, slow[i]);
      worst = Math.max(worst, Math.abs(fast[i] - exact) - 1e-12 - 1e-11 * exact);
    }
    assert.ok(worst <= 0, `${c.name}: the level sums differ from the bin-by-bin KL by ${worst} more than 1e-11 of it + 1e-12`);
    let best = Infinity;
    for (const kl of slow) best = Math.min(best, kl);
    const within = Math.max(0, best) * (1 + KL_TIE_TOLERANCE) + 1e-12;
    let expected = c.hist.length;
    for (let i = c.hist.length; i >= c.levels; i--) if (slow[i] <= within) { expected = i; break; }
    assert.equal(klThresholdBins(c.hist, c.levels, c.stride), expected, `${c.name}: threshold`);
  }
});

test('KL search keeps the widest threshold where every candidate ties at KL 0 (an empty tail, no rounding decides)', () => {
  // Near-equal counts on the first 100 bins (differences of 1e-7), nothing beyond: no threshold clips,
  // and every merge is within ~1e-14 of what it merges, so all candidates tie at KL 0 up to rounding.
  const hist = new Float64Array(2048);
  for (let i = 0; i < 100; i++) hist[i] = 1000 + (i % 7) * 1e-4;
  for (const stride of [1, 2]) {
    const curve = klCurve(hist, 128, stride);
    for (let i = 128; i <= 2048; i += stride) assert.ok(curve[i] < 1e-12, `KL at ${i} is ${curve[i]}`);
    assert.equal(klThresholdBins(hist, 128, stride), 2048);
    assert.equal(klThresholdBins(hist, 128, stride, 0), 2048, 'no tolerance: still the widest of the ties');
  }
});

test('a histogram bins each value at ⌊(v + r)·n/2r⌋ (the largest in the last bin) and does not count NaN', () => {
  const bins = 64;
  const h = new StreamingHistogram(bins);
  // Seven values (not a multiple of the four tallies), both ends of the range, a zero run, a NaN.
  const first = Float32Array.of(-2, 2, 0, 0, 0, NaN, 0.7);
  h.add(first);
  assert.equal(h.absMax, 2);
  const expected = new Float64Array(bins);
  const bin = (v: number) => Math.min(bins - 1, Math.floor((v + 2) * (bins / 4)));
  for (const v of first) if (!Number.isNaN(v)) expected[bin(v)]++;
  assert.deepEqual([...h.counts], [...expected]);
  assert.equal(h.total, 6, 'NaN is not counted');
  // A second batch inside the range, of every length mod 4.
  for (const len of [1, 2, 3, 4, 5]) {
    const v = Float32Array.from({ length: len }, (_, i) => -1.9 + i * 0.93);
    h.add(v);
    for (const x of v) expected[bin(x)]++;
  }
  assert.deepEqual([...h.counts], [...expected]);
  assert.equal(h.total, 6 + 15);
});

test('a histogram bins as the plain floor formula on batches larger and smaller than its bin count, after widening, with only zeros and NaN', () => {
  let s = 7;
  const rnd = (): number => ((s = (s * 16807) % 2147483647) / 2147483647);
  const h = new StreamingHistogram(256);
  const zeros = Float32Array.of(0, NaN, -0);
  h.add(zeros);
  assert.equal(h.total, 2, 'NaN is not counted when every value is zero');
  assert.equal(h.counts[128], 2);
  // The first batch sets the range; the second widens it (old counts re-binned); then batches within.
  let compared = 0;
  for (const [len, scale] of [[1000, 1], [300, 3], [100, 1], [5000, 2.5], [17, 0.1]] as const) {
    const before = Float64Array.from(h.counts);
    const widened = h.absMax;
    const v = Float32Array.from({ length: len }, () => (rnd() < 0.4 ? 0 : (rnd() * 2 - 1) * scale));
    h.add(v);
    if (h.absMax !== widened) continue; // re-binned: the previous counts moved, compare from the next batch on
    const r = h.absMax, n = 256;
    const expected = before;
    for (const x of v) expected[Math.min(n - 1, Math.floor((x + r) * (n / (2 * r))))]++;
    assert.deepEqual([...h.counts], [...expected], `batch of ${len}`);
    compared++;
  }
  assert.equal(compared, 3, 'the three batches within the range (two under the bin count, one over) were compared');
  assert.equal(h.total, 2 + 1000 + 300 + 100 + 5000 + 17);
});
