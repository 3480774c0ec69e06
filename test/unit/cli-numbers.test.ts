/** Numeric CLI options: plain decimals within the option's range, or a usage error that names the option. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { numberOption, NON_NEGATIVE, POSITIVE_INT } from '../../agent/src/cli/args.js';
import { UsageError } from '../../agent/src/cli/dispatch.js';

test('numberOption reads plain decimals and leaves an absent option undefined', () => {
  assert.equal(numberOption('--frames', '32', POSITIVE_INT), 32);
  assert.equal(numberOption('--max-drop', '0.5', NON_NEGATIVE), 0.5);
  assert.equal(numberOption('--max-drop', '1e-1', NON_NEGATIVE), 0.1);
  assert.equal(numberOption('--max-drop', '.5', NON_NEGATIVE), 0.5);
  assert.equal(numberOption('--frames', undefined, POSITIVE_INT), undefined);
});

test('numberOption refuses what Number() would quietly read, and values out of range', () => {
  const cases: Array<[string, string]> = [
    ['0x10', '16 by Number()'], ['', '0 by Number()'], [' ', '0 by Number()'], ['1e400', 'Infinity'], ['Infinity', 'Infinity'],
    ['12abc', 'NaN'], ['1.5', 'not an integer'], ['0', 'below 1'], ['-3', 'below 1'], ['0b11', '3 by Number()'],
  ];
  for (const [raw, why] of cases) {
    assert.throws(() => numberOption('--frames', raw, POSITIVE_INT), (e: unknown) => e instanceof UsageError && e.message === `Expected --frames to be a positive integer but received ${JSON.stringify(raw)}`, `${JSON.stringify(raw)} (${why})`);
  }
  assert.throws(() => numberOption('--score', '1.01', { what: 'a score threshold in [0, 1]', min: 0, max: 1 }), /Expected --score to be a score threshold in \[0, 1\] but received "1.01"/);
  assert.throws(() => numberOption('--waves', '0', { what: 'percentages', above: 0, max: 100 }), /Expected --waves to be percentages/);
});
