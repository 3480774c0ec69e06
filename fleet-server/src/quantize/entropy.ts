/**
 * KL-divergence threshold search for symmetric int8 ranges, as TensorRT's entropy calibrator does
 * it: S. Migacz, "8-bit Inference with TensorRT", GTC 2017 (slides 28-36). For each candidate
 * threshold bin i ≥ numQuantBins of the |x| histogram, P is the first i bins with everything beyond
 * folded into bin i-1 (clipping), Q is those i bins merged down to numQuantBins levels and expanded
 * back (each merged level spread evenly over the source bins that were non-empty); the threshold
 * with the smallest KL(P‖Q) wins; here the widest threshold within KL_TIE_TOLERANCE of it. Written
 * from the slides' pseudo-code.
 *
 * The first bin (|x| ≈ 0) is given its neighbour's count before the search, as NVIDIA's
 * pytorch-quantization does (calib/histogram.py, `_compute_amax_entropy`: `bins[0] = bins[1]`).
 * After a ReLU most values are exactly 0; left in, that spike dominates P, and every wider
 * threshold spreads it over more source bins inside the first quantization level, so the search
 * drifted to the smallest thresholds: it clipped the CenterNet's ReLU outputs to ~1/8 of their range.
 * Zero is exact in every int8 range, so its count says nothing about where to clip.
 */

/**
 * Thresholds whose KL is within this share of the smallest are taken as ties, and the widest of them
 * wins. KL(P‖Q) counts each clipped value alike however far past the threshold it lay, while what
 * clipping costs the network grows with that distance, and rounding's cost does not. Where the KL
 * curve has a flat, bumpy valley its argmin is set by next to nothing: on the CenterNet (3 frames of
 * vtest.avi) a depthwise ReLU output's KL stayed within 11% of its minimum from 0.44 to 0.69 of its
 * range, and the argmin moved from 0.60 to 0.48 of it when the Conv weights before it were rounded
 * onto another grid; the heatmap lost 2.3 dB to that one tensor (test/integration/quantize-models).
 * Every entropy range goes through this search: QDQ builds for the CPU and TensorRT, the TensorRT
 * calibration tables and the TFLite export's INT8 ranges (only the CPU builds were measured).
 */
export const KL_TIE_TOLERANCE = 0.05;

/** KL values closer than this are taken as equal (float rounding of the sums, see klCurve). */
const KL_ROUNDING = 1e-12;

/**
 * KL(P‖Q) for each candidate threshold of `counts` (index i: i bins kept; Infinity where not a
 * candidate), with the first bin given its neighbour's count.
 *
 * Each candidate costs one step per quantization level, not one per bin: within a level every
 * non-empty bin has the same q, so Σ p·log(p/q) splits into Σ h·log h (a prefix sum over the bins)
 * minus each level's count times log q, and only the last bin (where the clipped tail is folded in)
 * is taken by itself. Equal to the bin-by-bin KL (klDivergence) up to rounding: within ~1e-13 on
 * the histograms of test/unit/quantize-calibration.test.ts; a level's mean is a difference of two
 * prefix sums, so a small level after a large bulk of fractional (re-binned) counts can lose digits
 * (~1e-8 relative seen where q is near the 1e-10 smoothing, deep in the clipped, high-KL region).
 * Values are clamped at 0 (KL is never below it). On the CenterNet (3 frames of
 * vtest.avi, 349 activations, AVX2 EPYC, 2026-11-28) the bin-by-bin search took 9 s of a 28 s
 * `fleetctl model quantize` under the profiler; this one wrote a byte-identical file in 23 s.
 */
export function klCurve(counts: ArrayLike<number>, numQuantBins = 128, stride = 1): Float64Array {
  const n = counts.length;
  const kls = new Float64Array(n + 1).fill(Infinity);
  const hist = Float64Array.from(counts);
  hist[0] = hist[1];
  // suffix[i] = Σ hist[i..n); prefix[i] = Σ hist[0..i); hlogh[i] = Σ h·log h over [0, i); nz[i] = non-empty bins in [0, i)
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + hist[i];
  if (suffix[0] === 0) return kls;
  const prefix = new Float64Array(n + 1), hlogh = new Float64Array(n + 1), nz = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) {
    const h = hist[k];
    prefix[k + 1] = prefix[k] + h;
    hlogh[k + 1] = hlogh[k] + (h > 0 ? h * Math.log(h) : 0);
    nz[k + 1] = nz[k] + (h !== 0 ? 1 : 0);
  }
  const eps = 1e-10;
  const sp = suffix[0];
  const logSp = Math.log(sp);
  for (let i = numQuantBins; i <= n; i += stride) {
    // P: bins [0, i) with the tail folded into bin i-1; Q: those bins merged into numQuantBins levels
    // (unclipped counts), each level's mean spread over its non-empty bins.
    const sq = prefix[i];
    if (sq === 0) continue; // Q is empty: not a candidate (Infinity)
    const logSq = Math.log(sq);
    const per = i / numQuantBins;
    // Σ h·log q over the bins before i-1, level by level (q = v/sq on a level's non-empty bins).
    let sumHlogQ = 0;
    let qLast = 0;
    for (let j = 0; j < numQuantBins; j++) {
      const start = Math.floor(j * per);
      const end = j === numQuantBins - 1 ? i : Math.floor((j + 1) * per);
      const nonzero = nz[end] - nz[start];
      if (nonzero === 0) continue;
      const v = (prefix[end] - prefix[start]) / nonzero;
      const upto = Math.min(end, i - 1);
      if (j === numQuantBins - 1) qLast = v;
      if (upto <= start) continue;
      const mass = prefix[upto] - prefix[start];
      if (mass <= 0) continue;
      // q below eps is smoothed to eps, as klDivergence does.
      sumHlogQ += mass * (v / sq >= eps ? Math.log(v) - logSq : Math.log(eps));
    }
    const head = i - 1;
    let kl = (hlogh[head] - prefix[head] * logSp - sumHlogQ) / sp;
    const pLast = hist[head] + suffix[i];
    if (pLast > 0) {
      const qk = Math.max(hist[head] !== 0 ? qLast / sq : 0, eps);
      const pk = pLast / sp;
      kl += pk * Math.log(pk / qk);
    }
    kls[i] = Math.max(0, kl);
  }
  return kls;
}

/**
 * Returns the chosen number of histogram bins (threshold = bins * binWidth) for a folded |x| histogram:
 * the widest threshold whose KL is within `tolerance` of the smallest (KL_TIE_TOLERANCE; 0: the
 * argmin, the widest on a tie), KL_ROUNDING (1e-12) added to the window.
 */
export function klThresholdBins(counts: ArrayLike<number>, numQuantBins = 128, stride = 1, tolerance = KL_TIE_TOLERANCE): number {
  const n = counts.length;
  if (n <= numQuantBins) return n;
  const kls = klCurve(counts, numQuantBins, stride);
  let best = Infinity;
  for (const kl of kls) best = Math.min(best, kl);
  if (best === Infinity) return n;
  // KLs within KL_ROUNDING of each other are equal: where P = Q the level sums leave ~1e-13 (and the
  // bin-by-bin sum left -5e-11), so without it an exact tie at 0 was decided by rounding.
  const within = best + tolerance * best + KL_ROUNDING;
  for (let i = n; i >= numQuantBins; i--) if (kls[i] <= within) return i;
  return n;
}

/** KL(P‖Q) over the first `len` bins, both normalised; bins where P is 0 add nothing, Q = 0 where P > 0 is smoothed. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>, len = p.length): number {
  let sp = 0, sq = 0;
  for (let k = 0; k < len; k++) { sp += p[k]; sq += q[k]; }
  if (sp === 0) return 0;
  if (sq === 0) return Infinity;
  let kl = 0;
  const eps = 1e-10;
  for (let k = 0; k < len; k++) {
    if (p[k] === 0) continue;
    const pk = p[k] / sp;
    const qk = Math.max(q[k] / sq, eps);
    kl += pk * Math.log(pk / qk);
  }
  return kl;
}
