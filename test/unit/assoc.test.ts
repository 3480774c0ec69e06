import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearAssignment } from '../../agent/src/track/assignment.js';
import { iou } from '../../agent/src/track/iou.js';

function bruteForce(cost: number[][]): number {
  const n = cost.length;
  const m = cost[0].length;
  let best = Infinity;
  const used = new Array<boolean>(m).fill(false);
  const rec = (i: number, acc: number) => {
    if (i === n) { best = Math.min(best, acc); return; }
    for (let j = 0; j < m; j++) if (!used[j]) { used[j] = true; rec(i + 1, acc + cost[i][j]); used[j] = false; }
  };
  rec(0, 0);
  return best;
}

test('assignment finds the minimum cost on random square and wide matrices', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + (trial % 5);
    const m = n + (trial % 3);
    const cost = Array.from({ length: n }, () => Array.from({ length: m }, () => Math.round(rand() * 100) / 100));
    const r = linearAssignment(cost, Infinity);
    assert.equal(r.matches.length, n);
    const total = r.matches.reduce((s, x) => s + cost[x.row][x.col], 0);
    assert.ok(Math.abs(total - bruteForce(cost)) < 1e-9, `trial ${trial}`);
  }
});

test('assignment handles tall matrices and gates costs above maxCost', () => {
  const cost = [[0.1, 0.9], [0.2, 0.95], [0.9, 0.3]];
  const r = linearAssignment(cost, 0.5);
  assert.deepEqual(r.matches, [{ row: 0, col: 0 }, { row: 2, col: 1 }]);
  assert.deepEqual(r.unmatchedRows, [1]);
  assert.deepEqual(r.unmatchedCols, []);
  const none = linearAssignment([[Infinity, 0.9]], 0.5);
  assert.deepEqual(none.matches, []);
  assert.deepEqual(linearAssignment([], 1).matches, []);
});

test('greedy would pick the wrong pair; the assignment does not', () => {
  // Greedy takes (0,0)=0.1 first, forcing (1,1)=0.9; optimum is (0,1)+(1,0)=0.4.
  const r = linearAssignment([[0.1, 0.2], [0.2, 0.9]], 1);
  assert.deepEqual(r.matches, [{ row: 0, col: 1 }, { row: 1, col: 0 }]);
});

test('iou of identical, disjoint and half-overlapping boxes', () => {
  assert.equal(iou({ x: 0, y: 0, w: 10, h: 10 }, { x: 0, y: 0, w: 10, h: 10 }), 1);
  assert.equal(iou({ x: 0, y: 0, w: 10, h: 10 }, { x: 20, y: 0, w: 10, h: 10 }), 0);
  assert.ok(Math.abs(iou({ x: 0, y: 0, w: 10, h: 10 }, { x: 5, y: 0, w: 10, h: 10 }) - 1 / 3) < 1e-12);
});
