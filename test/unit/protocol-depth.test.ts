/**
 * A payload nested absurdly deep is dropped where it arrives: `reported` allows extra properties, and
 * one stored report nested past 1000 levels made SQLite's JSON functions fail every rollout tick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePayload, jsonDepth, MAX_PAYLOAD_DEPTH } from '../../agent/src/protocol/codec.js';

function reported(extra: unknown): string {
  return JSON.stringify({ v: 1, ts: Date.now(), models: { detector: '1.0.0' }, health: { status: 'ok', reasons: [] }, extra });
}

function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

test('jsonDepth counts objects and arrays, iteratively', () => {
  assert.equal(jsonDepth(1), 0);
  assert.equal(jsonDepth({}), 1);
  assert.equal(jsonDepth({ a: [{ b: 1 }] }), 3);
  assert.equal(jsonDepth(nested(100_000)), 100_000, 'no stack overflow on hostile depth');
});

test('a reported message nested deeper than the limit is dropped as a schema failure; a normal one passes', () => {
  const ok = decodePayload('reported', reported({ note: 'extra fields are allowed' }));
  assert.equal(ok.ok, true, ok.ok ? '' : ok.detail);
  const deep = decodePayload('reported', reported(nested(1100)));
  assert.equal(deep.ok, false);
  assert.ok(!deep.ok && deep.reason === 'schema' && /nested at most 32 levels/.test(deep.detail), !deep.ok ? deep.detail : '');
  const edge = decodePayload('reported', reported(nested(MAX_PAYLOAD_DEPTH - 2)));
  assert.equal(edge.ok, true, 'the limit leaves room for what extra fields legitimately nest');
});
