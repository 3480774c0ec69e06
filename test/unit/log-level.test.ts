/** EF_LOG_LEVEL (a unit drop-in, a shell) wins over the config's log.level; `run` always applied the config's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootLogger, setConfiguredLogLevel } from '../../agent/src/util/log.js';

test('the config\'s log level applies unless EF_LOG_LEVEL is set', () => {
  const saved = process.env.EF_LOG_LEVEL;
  try {
    delete process.env.EF_LOG_LEVEL;
    setConfiguredLogLevel('warn');
    assert.equal(rootLogger().level, 'warn');
    process.env.EF_LOG_LEVEL = 'debug';
    setConfiguredLogLevel('info');
    assert.equal(rootLogger().level, 'debug');
  } finally {
    if (saved === undefined) delete process.env.EF_LOG_LEVEL; else process.env.EF_LOG_LEVEL = saved;
    rootLogger().level = 'silent';
  }
});
