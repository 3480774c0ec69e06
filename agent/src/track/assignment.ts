/**
 * Minimum-cost rectangular assignment (Hungarian method with potentials, the shortest augmenting
 * path form described by Jonker & Volgenant 1987 and in Burkard, Dell'Amico & Martello,
 * "Assignment Problems", sec. 4.4). O(n^2 m) for n rows <= m columns. Written here from the
 * textbook description; no external code.
 *
 * Pairs whose cost exceeds `maxCost` are never matched: they are given a cost above any feasible
 * assignment and dropped from the result, which is how trackers gate matches by IoU.
 */
export interface AssignmentResult {
  matches: Array<{ row: number; col: number }>;
  unmatchedRows: number[];
  unmatchedCols: number[];
}

/**
 * @param cost rows x cols matrix (rows: e.g. tracks, cols: detections)
 * @param maxCost pairs costing more are never matched
 * @param colCount number of columns, needed when there are no rows (an empty matrix has no width)
 */
export function linearAssignment(cost: number[][], maxCost: number, colCount?: number): AssignmentResult {
  const rows = cost.length;
  const cols = rows === 0 ? (colCount ?? 0) : cost[0].length;
  if (rows === 0 || cols === 0) {
    return { matches: [], unmatchedRows: range(rows), unmatchedCols: range(cols) };
  }
  const transpose = rows > cols;
  const n = transpose ? cols : rows;
  const m = transpose ? rows : cols;
  // Gated pairs cost more than any sum of feasible pairs, so they are used only when unavoidable.
  const big = (Math.max(maxCost, 0) + 1) * (n + 1);
  const c = (i: number, j: number): number => {
    const v = transpose ? cost[j][i] : cost[i][j];
    return Number.isFinite(v) && v <= maxCost ? v : big;
  };
  // 1-based arrays as in the textbook formulation; column 0 is the virtual start.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1); // p[j]: row assigned to column j (0 = none)
  const way = new Int32Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(m + 1).fill(Infinity);
    const used = new Uint8Array(m + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = c(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const matches: Array<{ row: number; col: number }> = [];
  for (let j = 1; j <= m; j++) {
    if (p[j] === 0) continue;
    const i = p[j] - 1;
    const [row, col] = transpose ? [j - 1, i] : [i, j - 1];
    const val = cost[row][col];
    if (Number.isFinite(val) && val <= maxCost) matches.push({ row, col });
  }
  matches.sort((a, b) => a.row - b.row);
  const mr = new Set(matches.map((x) => x.row));
  const mc = new Set(matches.map((x) => x.col));
  return {
    matches,
    unmatchedRows: range(rows).filter((r) => !mr.has(r)),
    unmatchedCols: range(cols).filter((cc) => !mc.has(cc)),
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
