/**
 * Output SNR of a candidate against a reference, accumulated over frames:
 * 10·log10(Σ ref² / Σ (ref − cand)²) in dB, Infinity when they are identical.
 */
export interface SnrSums {
  sig: number;
  err: number;
}

export function addToSnr(acc: SnrSums, ref: ArrayLike<number>, cand: ArrayLike<number>): void {
  for (let i = 0; i < ref.length; i++) { acc.sig += ref[i] * ref[i]; acc.err += (ref[i] - cand[i]) ** 2; }
}

export function snrDb(acc: SnrSums): number {
  return acc.err === 0 ? Infinity : 10 * Math.log10(acc.sig / acc.err);
}
