import { test } from 'node:test';
import assert from 'node:assert/strict';
import { histogram, psi, psiCategorical } from '../../agent/src/telemetry/psi.js';

test('PSI is 0 for equal distributions and matches a hand computation', () => {
  assert.equal(psi([10, 20, 30], [1, 2, 3]), 0);
  // e = [.5,.5], a = [.9,.1]: (.4)ln(1.8) + (-.4)ln(.2) = 0.2351 + 0.6438
  assert.ok(Math.abs(psi([5, 5], [9, 1]) - (0.4 * Math.log(1.8) + -0.4 * Math.log(0.2))) < 1e-9);
  assert.ok(psi([5, 5], [10, 0]) > 0.25, 'empty bins stay finite and large');
  assert.ok(Number.isFinite(psi([5, 5], [10, 0])));
  assert.throws(() => psi([1], [1, 2]), /equal length/);
});

test('histogram clamps and categorical PSI takes the union of keys', () => {
  assert.deepEqual(histogram([-5, 0, 0.49, 0.5, 1, 7], 2, 0, 1), [3, 3]);
  assert.equal(psiCategorical(new Map([['person', 5]]), new Map([['person', 50]])), 0);
  assert.ok(psiCategorical(new Map([['person', 50], ['car', 50]]), new Map([['car', 90], ['person', 10]])) > 0.25);
});
