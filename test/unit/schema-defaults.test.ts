/**
 * The schedule, tracker and rules defaults are built at import with TypeBox's Value.Default instead
 * of compiling their ajv validators (~140 ms of every agent process start): they must stay what the
 * validators give an empty object, defaults of nested sections included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SCHEDULE_CONFIG, scheduleConfigValidator } from '../../agent/src/schedule/schema.js';
import { DEFAULT_TRACKER_CONFIG, trackerConfigValidator } from '../../agent/src/track/schema.js';
import { DEFAULT_RULES_CONFIG, rulesConfigValidator } from '../../agent/src/rules/schema.js';
import { agentConfigValidator } from '../../agent/src/config/schema.js';

for (const [name, value, validator] of [
  ['schedule', DEFAULT_SCHEDULE_CONFIG, scheduleConfigValidator],
  ['tracker', DEFAULT_TRACKER_CONFIG, trackerConfigValidator],
  ['rules', DEFAULT_RULES_CONFIG, rulesConfigValidator],
] as const) {
  test(`the ${name} defaults are the validator's for an empty object, and valid`, () => {
    assert.deepEqual(value, validator.parse({}, name));
    assert.deepEqual(validator.check(value), { ok: true, value });
    assert.notEqual(validator.defaults(), validator.defaults(), 'a fresh object each time');
  });
}

test('defaults() of a schema with required fields and nested sections fills what has defaults', () => {
  const d = agentConfigValidator.defaults() as Record<string, unknown>;
  const parsed = agentConfigValidator.parse({ detector: { model: '/m.onnx' }, cameras: [{ source: { kind: 'test', id: 'a' } }] }, 'agent config') as Record<string, unknown>;
  // Every section the config fills by default comes out the same from both.
  for (const key of ['schedule', 'tracker', 'privacy', 'telemetry']) assert.deepEqual(d[key], parsed[key], key);
});
