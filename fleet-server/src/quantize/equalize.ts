/**
 * Channel equalization before quantization. MobileNet-style networks (both default models) have
 * depthwise layers whose output channels differ in range by 100× or more; one per-tensor int8 scale
 * then leaves the small channels a handful of levels (we measured a single depthwise layer of the
 * CenterNet backbone dropping the activation SNR from 40 dB to 7 dB). Because ReLU is positively
 * homogeneous, scaling output channel c of a Conv by 1/s_c and the matching input channel of the next
 * Conv by s_c leaves the float network unchanged (Nagel et al., "Data-Free Quantization Through Weight
 * Equalization and Bias Correction", ICCV 2019, §4.1). We choose s_c from calibrated per-channel
 * activation maxima a_c and the next layer's per-input-channel weight maxima w_c as SmoothQuant does
 * (Xiao et al., 2023, eq. 4, α = 0.5): s_c = sqrt(a_c / w_c), so both end up at sqrt(a_c·w_c);
 * when the next Conv is depthwise its weights are quantized per channel anyway, so s_c = a_c / max(a)
 * equalizes the activation fully.
 */
import { DataType, floatTensor, intAttr, tensorToFloat32, type OnnxModel, type OnnxNode } from '../convert/onnx/model.js';
import { analyzeGraph, nodeKey } from './graph-info.js';
import { cloneModel } from './qdq.js';

export interface EqualizationPair {
  producer: OnnxNode;
  /** The ReLU between the two convs, if any. */
  activation?: OnnxNode;
  consumer: OnnxNode;
  /** The tensor the consumer reads (per-channel statistics are collected here). */
  tensor: string;
}

export function findEqualizationPairs(model: OnnxModel, exclude: Set<string> = new Set()): EqualizationPair[] {
  const g = model.graph;
  const info = analyzeGraph(g);
  const uses = (name: string): number => (info.consumers.get(name) ?? []).length;
  const pairs: EqualizationPair[] = [];
  for (const a of g.nodes) {
    if (a.opType !== 'Conv' || exclude.has(nodeKey(a))) continue;
    const w = g.initializers.get(a.inputs[1]);
    if (w?.dataType !== DataType.FLOAT || w.dims.length !== 4 || uses(a.inputs[1]) !== 1) continue;
    if (a.inputs[2] && (g.initializers.get(a.inputs[2])?.dataType !== DataType.FLOAT || uses(a.inputs[2]) !== 1)) continue;
    let t = a.outputs[0];
    let act: OnnxNode | undefined;
    let cons = info.consumers.get(t) ?? [];
    if (cons.length === 1 && cons[0].opType === 'Relu' && !info.graphOutputs.has(t)) {
      act = cons[0]; t = act.outputs[0]; cons = info.consumers.get(t) ?? [];
    }
    if (cons.length !== 1 || info.graphOutputs.has(t)) continue;
    const b = cons[0];
    if (b.opType !== 'Conv' || b.inputs[0] !== t || exclude.has(nodeKey(b))) continue;
    const wb = g.initializers.get(b.inputs[1]);
    if (wb?.dataType !== DataType.FLOAT || wb.dims.length !== 4 || uses(b.inputs[1]) !== 1) continue;
    const gb = intAttr(b, 'group', 1);
    if (gb !== 1 && !(gb === w.dims[0] && wb.dims[1] === 1)) continue;
    pairs.push({ producer: a, activation: act, consumer: b, tensor: t });
  }
  return pairs;
}

/** Returns an equalized copy of the model; `channelMax` holds per-channel |x| maxima of each pair's tensor. */
export function equalize(source: OnnxModel, pairs: EqualizationPair[], channelMax: Map<string, Float64Array>): { model: OnnxModel; equalized: number } {
  const model = cloneModel(source);
  const g = model.graph;
  let equalized = 0;
  for (const p of pairs) {
    const act = channelMax.get(p.tensor);
    const wa = g.initializers.get(p.producer.inputs[1]), wb = g.initializers.get(p.consumer.inputs[1]);
    if (!act || !wa || !wb) continue;
    const C = wa.dims[0];
    if (act.length !== C) continue;
    const A = tensorToFloat32(wa), B = tensorToFloat32(wb);
    const depthwise = intAttr(p.consumer, 'group', 1) !== 1;
    const perA = A.length / C;
    const outB = wb.dims[0], perB = wb.dims[2] * wb.dims[3];
    const wIn = new Float64Array(C);
    if (depthwise) for (let c = 0; c < C; c++) for (let k = 0; k < perB; k++) wIn[c] = Math.max(wIn[c], Math.abs(B[c * perB + k]));
    else for (let o = 0; o < outB; o++) for (let c = 0; c < C; c++) for (let k = 0; k < perB; k++) wIn[c] = Math.max(wIn[c], Math.abs(B[(o * C + c) * perB + k]));
    const amax = Math.max(...act);
    if (!(amax > 0)) continue;
    const s = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const raw = depthwise ? act[c] / amax : Math.sqrt(act[c] / Math.max(wIn[c], 1e-12));
      // Dead channels (never active) and degenerate weights keep their scale.
      s[c] = act[c] > 1e-8 && wIn[c] > 1e-12 && Number.isFinite(raw) ? Math.min(1e4, Math.max(1e-4, raw)) : 1;
    }
    for (let c = 0; c < C; c++) for (let k = 0; k < perA; k++) A[c * perA + k] /= s[c];
    g.initializers.set(p.producer.inputs[1], floatTensor(wa.dims, A));
    if (p.producer.inputs[2]) {
      const bias = tensorToFloat32(g.initializers.get(p.producer.inputs[2]) ?? wa);
      for (let c = 0; c < C; c++) bias[c] /= s[c];
      g.initializers.set(p.producer.inputs[2], floatTensor([C], bias));
    }
    if (depthwise) for (let c = 0; c < C; c++) for (let k = 0; k < perB; k++) B[c * perB + k] *= s[c];
    else for (let o = 0; o < outB; o++) for (let c = 0; c < C; c++) for (let k = 0; k < perB; k++) B[(o * C + c) * perB + k] *= s[c];
    g.initializers.set(p.consumer.inputs[1], floatTensor(wb.dims, B));
    equalized++;
  }
  return { model, equalized };
}
