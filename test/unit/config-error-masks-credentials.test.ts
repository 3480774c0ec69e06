/**
 * A config refused by the schema names each wrong field with the value it was given. A camera URL
 * that fails its own pattern (`rtps://` for `rtsp://`) showed its password there, in check-config's
 * output and the journal; a wrong password field showed the password itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { ConfigError } from '../../agent/src/util/errors.js';

const source = compileSchema(SourceConfig);

function refusal(value: unknown, validator: { parse(v: unknown, what: string): unknown } = source): ConfigError {
  try {
    validator.parse(value, 'the camera');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('expected the value to be refused');
}

test('an rtsp URL that fails the pattern is shown without its credentials', () => {
  const err = refusal({ kind: 'rtsp', url: 'rtps://admin:secret@10.0.0.21/s' });
  assert.doesNotMatch(err.message, /secret|admin/);
  assert.match(err.message, /\/url: expected .* but received "rtps:\/\/\*\*\*@10\.0\.0\.21\/s"/);
});

test('a long URL is masked before it is shortened, so a cut never leaves the password', () => {
  const pw = 'x'.repeat(70);
  const err = refusal({ kind: 'rtsp', url: `rtps://admin:${pw}@10.0.0.21/s` });
  assert.doesNotMatch(err.message, /xxxxxxxx|admin/);
});

test('a password field is never shown, whatever is wrong with it', () => {
  for (const password of ['', 1234]) {
    const err = refusal({ kind: 'rtsp', url: 'rtsp://10.0.0.21/s', password });
    assert.match(err.message, /\/password: expected .* but received \*\*\*/);
    assert.doesNotMatch(err.message, /1234/);
  }
});

test('a misspelt password field (an unknown key) is not shown either', () => {
  const err = refusal({ kind: 'rtsp', url: 'rtsp://10.0.0.21/s', pasword: 'hunter2' });
  assert.match(err.message, /\/pasword: expected no such key/);
  assert.doesNotMatch(err.message, /hunter2/);
});

test('a whole object shown as the received value has its passwords and URL credentials hidden', () => {
  const v = compileSchema(Type.Object({ cam: Type.Union([Type.String(), Type.Number()]) }));
  const err = refusal({ cam: { url: 'rtsp://admin:secret@h/s', password: 'hunter2' } }, v);
  assert.doesNotMatch(err.message, /secret|hunter2|admin/);
  assert.match(err.message, /\*\*\*/);
});

test('other values are shown as they were given', () => {
  const err = refusal({ kind: 'rtsp', url: 'rtps://10.0.0.21/s' });
  assert.match(err.message, /received "rtps:\/\/10\.0\.0\.21\/s"/);
});
