import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce } from '../../agent/src/util/coalesce.js';

// The fleet server republishes every device's desired state when it is back on its broker; a link
// flapping every second would otherwise send them all at each reconnect.
test('coalesce: the first call runs at once, calls within the gap run once at its end', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  try {
    let runs = 0;
    const f = coalesce(() => { runs++; }, 30_000, () => Date.now()); // the mocked clock, given: the default is monotonic
    f();
    assert.equal(runs, 1);
    for (let i = 0; i < 20; i++) { mock.timers.tick(1000); f(); }
    assert.equal(runs, 1, 'calls within 30 s wait');
    mock.timers.tick(10_000);
    assert.equal(runs, 2, 'one run at the end of the gap for all of them');
    mock.timers.tick(60_000);
    f();
    assert.equal(runs, 3, 'after a quiet gap, at once again');
  } finally {
    mock.timers.reset();
  }
});
