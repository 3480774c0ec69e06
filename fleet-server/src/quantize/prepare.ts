/**
 * What both INT8 builders (the ONNX QDQ model, quantize.ts, and the INT8 TFLite export) do to the
 * float model before they measure ranges, all exact in float or rounding-only:
 * 0. affine ops after a Conv (BatchNormalization, scalar Mul and Add) folded into it (fold-affine.ts);
 * 1. channel equalization of Conv → ReLU → Conv pairs (equalize.ts);
 * 2. channel rescaling across hard-swish, then along residual streams (rescale.ts);
 * 3. GPTQ weight rounding against the calibration frames (gptq.ts), leaving every Conv's weights on
 *    the per-channel int8 grid that the builders then store.
 * Each step reads the calibration frames again (decoded once and replayed while they fit: frames.ts).
 */
import type { OnnxModel } from '../convert/onnx/model.js';
import type { PreprocessSpec } from '../../../agent/src/model/metadata.js';
import { calibrate } from './calibrate.js';
import { modelInputs, type FrameSelection } from './frames.js';
import { equalize, findEqualizationPairs } from './equalize.js';
import { findRescaleSeeds, findResidualAdds, planResiduals, rescale, rescaleResiduals } from './rescale.js';
import { applyGptq, collectConvMoments } from './gptq.js';
import { foldAffineIntoConvs } from './fold-affine.js';
import type { WeightRange } from './qmath.js';

export interface PrepareOptions {
  inputName: string;
  frames: FrameSelection;
  preprocess: PreprocessSpec;
  exclude?: string[];
  /** Steps 0, 1 and 2 (default true). */
  equalize?: boolean;
  /** Step 3 (default true). */
  gptq?: boolean;
  /** The weight grid step 3 rounds onto: the one the INT8 builder will store (default full, ±127). */
  weightRange?: WeightRange;
  /** Step 3 rounds onto binary16 scales (qmath.weightGridFor `half`): for an ONNX CPU build, which stores them so. */
  halfScales?: boolean;
}

export interface PrepareReport {
  /** BatchNormalizations and scalar Mul(+Add) pairs folded into the Conv before them. */
  foldedAffines: number;
  /** Conv pairs rescaled by channel equalization. */
  equalizedPairs: number;
  /** Convs whose output channels were rescaled across hard-swish. */
  rescaledConvs: number;
  /** Residual streams (chains of skip-connection Adds) rescaled as one. */
  residualStreams: number;
  /** Convs whose weights GPTQ rounded. */
  gptqConvs: number;
}

/**
 * `model` is the prepared model; `unrounded` the same before GPTQ (exactly the original function), whose
 * weights a Conv that stays float should get back.
 */
export async function prepareForInt8(original: OnnxModel, o: PrepareOptions): Promise<{ model: OnnxModel; unrounded: OnnxModel; report: PrepareReport }> {
  const exclude = new Set(o.exclude ?? []);
  const frames = () => modelInputs(o.frames, o.preprocess);
  const channelMax = async (model: OnnxModel, tensors: string[], channelAxis?: Map<string, number>) =>
    (await calibrate({ model, inputName: o.inputName, tensors, channelMaxFor: tensors, channelAxis, histograms: false, frames: frames() })).channelMax;
  let model = original;
  const report: PrepareReport = { foldedAffines: 0, equalizedPairs: 0, rescaledConvs: 0, residualStreams: 0, gptqConvs: 0 };
  if (o.equalize !== false) {
    const folded = foldAffineIntoConvs(model, exclude);
    report.foldedAffines = folded.report.batchNorms + folded.report.scalarAffines;
    model = folded.model;
    const pairs = findEqualizationPairs(model, exclude);
    if (pairs.length > 0) {
      const eq = equalize(model, pairs, await channelMax(model, pairs.map((p) => p.tensor)));
      model = eq.model;
      report.equalizedPairs = eq.equalized;
    }
    const seeds = findRescaleSeeds(model, exclude);
    if (seeds.length > 0) {
      const rs = rescale(model, seeds, await channelMax(model, seeds.map((s) => s.outputs[0])));
      model = rs.model;
      report.rescaledConvs = rs.regions.length;
    }
    const residuals = planResiduals(model, findResidualAdds(model, exclude));
    if (residuals.length > 0) {
      const axes = new Map<string, number>();
      const addOutputs = new Set(model.graph.nodes.filter((n) => n.opType === 'Add').map((n) => n.outputs[0]));
      for (const r of residuals) for (const [t, axis] of r.tensors) if (addOutputs.has(t)) axes.set(t, axis);
      const rr = rescaleResiduals(model, residuals, await channelMax(model, [...axes.keys()], axes));
      model = rr.model;
      report.residualStreams = rr.regions;
    }
  }
  const unrounded = model;
  if (o.gptq !== false) {
    const gq = applyGptq(model, await collectConvMoments({ model, inputName: o.inputName, frames: frames(), exclude }), { weightRange: o.weightRange, halfScales: o.halfScales });
    model = gq.model;
    report.gptqConvs = gq.report.convs;
  }
  return { model, unrounded, report };
}
