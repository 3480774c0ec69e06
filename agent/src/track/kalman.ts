/**
 * Constant-velocity Kalman filter for one box, state (cx, cy, w, h) plus their velocities per frame.
 *
 * Why this shape: SORT (Bewley et al. 2016) and ByteTrack (Zhang et al. 2022) model a box with a
 * constant-velocity linear filter; we keep width/height rather than aspect/height (as BoT-SORT does,
 * Aharon et al. 2022) because pedestrians change aspect as they walk. Process and measurement noise
 * scale with the box size (the DeepSORT weighting, Wojke et al. 2017), so a far small person and a
 * near large one are equally trusted.
 *
 * Because the transition, observation and noise matrices never couple two coordinates, the 8x8
 * covariance stays block-diagonal: four independent 2x2 (position, velocity) filters give exactly the
 * same result as the full 8x8 filter, with no matrix inversion.
 */
import type { Box } from '../types.js';

export interface KalmanNoise {
  /** Std of position noise as a fraction of box size (per frame). DeepSORT uses 1/20. */
  stdWeightPosition: number;
  /** Std of velocity noise as a fraction of box size (per frame). DeepSORT uses 1/160. */
  stdWeightVelocity: number;
}

export const DEFAULT_KALMAN_NOISE: KalmanNoise = { stdWeightPosition: 1 / 20, stdWeightVelocity: 1 / 160 };

/** One coordinate: position p, velocity v, covariance [[ppp, ppv], [ppv, pvv]]. */
interface Axis {
  p: number;
  v: number;
  ppp: number;
  ppv: number;
  pvv: number;
}

export class BoxKalman {
  private readonly axes: [Axis, Axis, Axis, Axis];
  private readonly noise: KalmanNoise;

  constructor(box: Box, noise: KalmanNoise = DEFAULT_KALMAN_NOISE) {
    this.noise = noise;
    const m = toMeasurement(box);
    const sizes = [box.w, box.h, box.w, box.h];
    this.axes = m.map((p, i) => {
      const s = sizes[i];
      // Initial uncertainty: 2x the position weight, 10x the velocity weight (DeepSORT initiate()).
      const sp = 2 * noise.stdWeightPosition * s;
      const sv = 10 * noise.stdWeightVelocity * s;
      return { p, v: 0, ppp: sp * sp, ppv: 0, pvv: sv * sv };
    }) as [Axis, Axis, Axis, Axis];
  }

  /** Advances the state by `frames` frames (x' = F x, P' = F P F^T + Q per frame). */
  predict(frames = 1): void {
    for (let n = 0; n < frames; n++) {
      const [w, h] = [Math.max(1, this.axes[2].p), Math.max(1, this.axes[3].p)];
      const sizes = [w, h, w, h];
      for (let i = 0; i < 4; i++) {
        const a = this.axes[i];
        const qp = (this.noise.stdWeightPosition * sizes[i]) ** 2;
        const qv = (this.noise.stdWeightVelocity * sizes[i]) ** 2;
        a.p += a.v;
        // F = [[1,1],[0,1]]: P' = [[ppp + 2ppv + pvv, ppv + pvv], [ppv + pvv, pvv]] + Q
        const ppp = a.ppp + 2 * a.ppv + a.pvv + qp;
        const ppv = a.ppv + a.pvv;
        a.ppp = ppp;
        a.ppv = ppv;
        a.pvv += qv;
      }
    }
    // A shrinking box must not invert: clamp size velocity so that size stays positive.
    for (const i of [2, 3]) if (this.axes[i].p < 1) { this.axes[i].p = 1; this.axes[i].v = 0; }
  }

  /** Corrects the state with a measured box (H = [1, 0] per axis). */
  update(box: Box): void {
    const m = toMeasurement(box);
    const sizes = [box.w, box.h, box.w, box.h];
    for (let i = 0; i < 4; i++) {
      const a = this.axes[i];
      const r = (this.noise.stdWeightPosition * sizes[i]) ** 2;
      const s = a.ppp + r;
      const kp = a.ppp / s;
      const kv = a.ppv / s;
      const y = m[i] - a.p;
      a.p += kp * y;
      a.v += kv * y;
      // P' = (I - K H) P
      const ppp = (1 - kp) * a.ppp;
      const ppv = (1 - kp) * a.ppv;
      const pvv = a.pvv - kv * a.ppv;
      a.ppp = ppp;
      a.ppv = ppv;
      a.pvv = pvv;
    }
  }

  /** Current box estimate in source pixels. */
  box(): Box {
    const [cx, cy, w, h] = this.axes.map((a) => a.p);
    const ww = Math.max(1, w);
    const hh = Math.max(1, h);
    return { x: cx - ww / 2, y: cy - hh / 2, w: ww, h: hh };
  }

  /** Velocity of the box centre in pixels per frame. */
  velocity(): { vxPxPerFrame: number; vyPxPerFrame: number } {
    return { vxPxPerFrame: this.axes[0].v, vyPxPerFrame: this.axes[1].v };
  }

  /** Variance of the centre position (px^2), for tests and gating. */
  positionVariance(): { x: number; y: number } {
    return { x: this.axes[0].ppp, y: this.axes[1].ppp };
  }
}

function toMeasurement(b: Box): [number, number, number, number] {
  return [b.x + b.w / 2, b.y + b.h / 2, b.w, b.h];
}
