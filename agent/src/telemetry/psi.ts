/**
 * Population stability index between a baseline (expected) and a current (actual) histogram:
 * PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ) over bins of proportions. Conventional reading (Siddiqi, "Credit
 * Risk Scorecards", Wiley 2006, ch. 8): < 0.1 no shift, 0.1–0.25 moderate, > 0.25 significant.
 * Empty bins would make the log infinite; each proportion is floored at `epsilon` (a common
 * smoothing), so PSI stays finite and tiny bins weigh little.
 */
export function psi(expected: readonly number[], actual: readonly number[], epsilon = 1e-4): number {
  if (expected.length !== actual.length) {
    throw new RangeError(`Expected histograms of equal length but received ${expected.length} and ${actual.length} bins`);
  }
  const eTotal = expected.reduce((s, v) => s + v, 0);
  const aTotal = actual.reduce((s, v) => s + v, 0);
  if (eTotal <= 0 || aTotal <= 0) return 0;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i] / eTotal, epsilon);
    const a = Math.max(actual[i] / aTotal, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Counts of `values` in `bins` equal bins over [min, max]; values outside are clamped to the ends. */
export function histogram(values: Iterable<number>, bins: number, min: number, max: number): number[] {
  const h = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (const v of values) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor((v - min) / width)));
    h[i] += 1;
  }
  return h;
}

/** PSI over categorical counts (class mix): the union of keys forms the bins. */
export function psiCategorical(expected: ReadonlyMap<string, number>, actual: ReadonlyMap<string, number>, epsilon = 1e-4): number {
  const keys = [...new Set([...expected.keys(), ...actual.keys()])];
  return psi(keys.map((k) => expected.get(k) ?? 0), keys.map((k) => actual.get(k) ?? 0), epsilon);
}
