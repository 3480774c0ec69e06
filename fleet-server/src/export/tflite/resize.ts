/**
 * ONNX Resize → TFLite RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR options, chosen only where TFLite
 * samples the same input pixels with the same weights; anything else is refused, naming the node and
 * the attribute, so that no export computes something other than its ONNX model.
 *
 * Facts used (onnx/docs/Operators.md, Resize-19; tensorflow/lite/kernels/internal/reference/
 * resize_bilinear.h ComputeInterpolationValues and resize_nearest_neighbor.h GetNearestNeighbor):
 * - ONNX maps an output index x to x_original by coordinate_transformation_mode, with
 *   scale = output/input (the given scale, or output/input when `sizes` is given; the caller makes
 *   sure the two agree), then for nearest rounds it by nearest_mode and clamps it to [0, in − 1].
 * - TFLite bilinear samples at x·s (align_corners: s = (in−1)/(out−1)) or (x + 0.5)·s − 0.5
 *   (half_pixel_centers), s = in/out, clamped to the input: ONNX's asymmetric, align_corners and
 *   half_pixel (pytorch_half_pixel while the output is longer than 1) exactly.
 * - TFLite nearest picks floor(x·s) or floor((x + 0.5)·s) (half_pixel_centers), or round(x·s) with
 *   align_corners, clamped to in − 1. Which ONNX modes that equals depends on the sizes (ONNX's
 *   default half_pixel + round_prefer_floor is floor((x + 0.5)·s) except where that is a whole
 *   number), so the index maps are compared for every output index instead of by a table.
 */
import { ModelError } from '../../../../agent/src/util/errors.js';

export interface TflResize {
  op: 'bilinear' | 'nearest';
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

export interface ResizeSpec {
  /** The ONNX node's name, for messages. */
  node: string;
  mode: string;
  coordinateTransformationMode: string;
  nearestMode: string;
  inHW: readonly number[];
  outHW: readonly number[];
  /** Which export, in messages (Core ML layers are built from the TFLite graph); TFLite when absent. */
  exporter?: string;
}

/** A rational number num/den (den > 0): the sample positions are compared exactly, not in floats. */
interface Q { num: number; den: number }

const floorDiv = (a: number, b: number): number => (a - (((a % b) + b) % b)) / b;
const floorQ = (q: Q): number => floorDiv(q.num, q.den);
const ceilQ = (q: Q): number => -floorDiv(-q.num, q.den);
/** Is q exactly halfway between two integers? */
const isHalf = (q: Q): boolean => ((2 * q.num) % (2 * q.den) + 2 * q.den) % (2 * q.den) === q.den;
const clamp = (i: number, size: number): number => Math.min(Math.max(i, 0), size - 1);

const ONNX_LINEAR: Record<string, { align: boolean; half: boolean } | undefined> = {
  asymmetric: { align: false, half: false },
  align_corners: { align: true, half: false },
  half_pixel: { align: false, half: true },
  pytorch_half_pixel: { align: false, half: true },
};
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const NEAREST_TRANSFORMS = ['asymmetric', 'align_corners', 'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn'];

/** ONNX's x_original for output index x, exactly. */
function onnxOriginal(ctm: string, x: number, inSize: number, outSize: number): Q {
  switch (ctm) {
    case 'asymmetric': return { num: x * inSize, den: outSize };
    case 'align_corners': return outSize > 1 ? { num: x * (inSize - 1), den: outSize - 1 } : { num: 0, den: 1 };
    case 'tf_half_pixel_for_nn': return { num: (2 * x + 1) * inSize, den: 2 * outSize };
    case 'pytorch_half_pixel': return outSize > 1 ? { num: (2 * x + 1) * inSize - outSize, den: 2 * outSize } : { num: 0, den: 1 };
    default: return { num: (2 * x + 1) * inSize - outSize, den: 2 * outSize }; // half_pixel
  }
}

function onnxNearest(ctm: string, nearestMode: string, x: number, inSize: number, outSize: number): number {
  const q = onnxOriginal(ctm, x, inSize, outSize);
  let i: number;
  switch (nearestMode) {
    case 'floor': i = floorQ(q); break;
    case 'ceil': i = ceilQ(q); break;
    case 'round_prefer_ceil': i = floorQ({ num: 2 * q.num + q.den, den: 2 * q.den }); break;
    default: i = isHalf(q) ? floorQ(q) : floorQ({ num: 2 * q.num + q.den, den: 2 * q.den }); // round_prefer_floor
  }
  return clamp(i, inSize);
}

/**
 * TFLite's nearest index, exactly; `undefined` where the exact value sits on a rounding boundary and
 * the scale is not a binary fraction, because there the kernels' float (reference) and 16.16 fixed
 * point (optimized) scales can fall on either side of it.
 */
function tflNearest(t: { align: boolean; half: boolean }, x: number, inSize: number, outSize: number): number | undefined {
  const s: Q = t.align && outSize > 1 ? { num: inSize - 1, den: outSize - 1 } : { num: inSize, den: outSize };
  const v: Q = t.half ? { num: (2 * x + 1) * s.num, den: 2 * s.den } : { num: x * s.num, den: s.den };
  const boundary = t.align ? isHalf(v) : v.num % v.den === 0;
  if (boundary && v.num !== 0 && !Number.isInteger((s.num / s.den) * 65536)) return undefined;
  return clamp(t.align ? floorQ({ num: 2 * v.num + v.den, den: 2 * v.den }) : floorQ(v), inSize);
}

export function planResize(r: ResizeSpec): TflResize {
  const refuse = (what: string): never => { throw new ModelError(`${r.exporter ?? 'TFLite'} export: Resize ${r.node} ${what}`); };
  if (r.mode === 'linear') {
    const t = ONNX_LINEAR[r.coordinateTransformationMode];
    if (!t) refuse(`mode linear with coordinate_transformation_mode ${r.coordinateTransformationMode} has no TFLite equivalent (asymmetric, align_corners, half_pixel and pytorch_half_pixel do)`);
    // pytorch_half_pixel samples x_original 0 for an output of length 1; half_pixel_centers the input's middle.
    if (r.coordinateTransformationMode === 'pytorch_half_pixel' && r.outHW.some((o, k) => o === 1 && r.inHW[k] > 1)) {
      refuse('coordinate_transformation_mode pytorch_half_pixel to an output of length 1 has no TFLite equivalent');
    }
    return { op: 'bilinear', alignCorners: t!.align, halfPixelCenters: t!.half };
  }
  if (r.mode !== 'nearest') return refuse(`mode ${r.mode} has no TFLite equivalent (linear and nearest do)`);
  if (!NEAREST_TRANSFORMS.includes(r.coordinateTransformationMode)) {
    refuse(`mode nearest with coordinate_transformation_mode ${r.coordinateTransformationMode} has no TFLite equivalent`);
  }
  if (!NEAREST_MODES.includes(r.nearestMode)) refuse(`nearest_mode ${r.nearestMode} is not an ONNX nearest_mode`);
  for (const t of [{ align: false, half: false }, { align: false, half: true }, { align: true, half: false }]) {
    const same = [0, 1].every((k) => {
      for (let x = 0; x < r.outHW[k]; x++) {
        if (tflNearest(t, x, r.inHW[k], r.outHW[k]) !== onnxNearest(r.coordinateTransformationMode, r.nearestMode, x, r.inHW[k], r.outHW[k])) return false;
      }
      return true;
    });
    if (same) return { op: 'nearest', alignCorners: t.align, halfPixelCenters: t.half };
  }
  return refuse(`mode nearest with coordinate_transformation_mode ${r.coordinateTransformationMode} and nearest_mode ${r.nearestMode} from ${r.inHW.join('×')} to ${r.outHW.join('×')} has no TFLite equivalent: no RESIZE_NEAREST_NEIGHBOR (align_corners, half_pixel_centers) picks the same pixels for every output, short of float rounding at a pixel boundary`);
}
