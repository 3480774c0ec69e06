/**
 * The CenterNet decoding tail that the TFLite export leaves out (TopK, Gather and integer Mod have no
 * mapping here), in TS: the same steps as the ONNX graph's tail, so the result feeds the agent's
 * existing `centernet` decoder unchanged. Heatmap peaks are cells equal to their 3×3 max (SAME
 * padding), the top k over cells × classes are kept, and a peak at (row, col) with box sides
 * (l, t, r, b) from the wh head becomes [4·col - l, 4·row - t, 4·col + r, 4·row + b, score, class]
 * (stride 4 in model-input pixels; constants read from the exported graph's tail).
 */
export interface HeadTensor { dims: readonly number[]; data: Float32Array }

export function centernetHeadsToDetections(heatmap: HeadTensor, wh: HeadTensor, k = 100, stride = 4): { dims: number[]; data: Float32Array } {
  const [, h, w, classes] = heatmap.dims;
  const hm = heatmap.data;
  const peaks: Array<{ score: number; idx: number }> = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < classes; c++) {
        const v = hm[(y * w + x) * classes + c];
        let isMax = true;
        for (let dy = -1; dy <= 1 && isMax; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            if (hm[(yy * w + xx) * classes + c] > v) { isMax = false; break; }
          }
        }
        if (isMax) peaks.push({ score: v, idx: (y * w + x) * classes + c });
      }
    }
  }
  peaks.sort((a, b) => b.score - a.score);
  const out = new Float32Array(k * 6);
  peaks.slice(0, k).forEach((p, i) => {
    const cls = p.idx % classes;
    const cell = Math.floor(p.idx / classes);
    const col = cell % w, row = Math.floor(cell / w);
    const b = wh.data.subarray(cell * 4, cell * 4 + 4);
    out.set([stride * col - b[0], stride * row - b[1], stride * col + b[2], stride * row + b[3], p.score, cls], i * 6);
  });
  return { dims: [1, k, 6], data: out };
}
