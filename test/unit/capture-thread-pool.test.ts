/**
 * Each camera holds libuv pool threads (its bus poll for good, its pull until the next frame): with as
 * many cameras as threads every camera stalled, without an error. The config allows at most
 * MAX_CAMERAS, the launchers size the pool for them, and a source that would take the last thread
 * refuses to start with what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { MAX_CAMERAS, threadPoolSizeFor, threadPoolSizeOf } from '../../agent/src/capture/thread-pool.js';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { standInCamera } from '../helpers/gst-stand-in.js';

const source = compileSchema(SourceConfig);

/** A live camera that sends a 2×2 frame whenever pulled, until stopped. */
const endless = standInCamera();

test('a camera that would hold the last thread of the pool refuses to start, saying what to set; with one camera fewer it starts', async () => {
  const make = (id: string) => new GstFrameSource({ config: source.parse({ kind: 'test', id }, 's'), gst: endless, threadPoolSize: 3 });
  const running = [make('a').frames(), make('b').frames()];
  for (const it of running) assert.equal((await it.next()).done, false);
  await assert.rejects(make('c').frames().next(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_CAPTURE');
    assert.match(err.message, /^Camera source "c" cannot start: 3 cameras would hold all 3 threads of libuv's pool .*UV_THREADPOOL_SIZE to at least 10 \(2 per camera \+ 4\)/);
    return true;
  });
  await running[0].return(undefined);
  const third = make('c').frames();
  assert.equal((await third.next()).done, false, 'a camera that ended gave its threads back');
  await third.return(undefined);
  await running[1].return(undefined);
});

test('the pool size is read as libuv reads UV_THREADPOOL_SIZE, and sized 2 per camera + 4', () => {
  assert.deepEqual([undefined, '16', '0', 'x', '5000', '20abc'].map(threadPoolSizeOf), [4, 16, 1, 1, 1024, 20]);
  assert.equal(threadPoolSizeFor(20), 44);
  assert.ok(threadPoolSizeFor(MAX_CAMERAS) <= 1024);
});

test(`a config with more than ${MAX_CAMERAS} cameras is refused, saying why and what to do`, () => {
  const config = (n: number) => ({ detector: { model: 'm.onnx' }, cameras: Array.from({ length: n }, (_, i) => ({ source: { kind: 'test', id: `cam${i}` } })) });
  assert.equal(agentConfigValidator.check(config(MAX_CAMERAS)).ok, true);
  const r = agentConfigValidator.check(config(MAX_CAMERAS + 1));
  assert.equal(r.ok, false);
  assert.deepEqual(!r.ok && r.issues, [{ path: '/cameras', expected: `at most ${MAX_CAMERAS} cameras per agent (each holds two threads of the agent's libuv pool, which the systemd unit and bin/edge-agent size for ${MAX_CAMERAS} cameras): run more cameras on another agent`, received: `${MAX_CAMERAS + 1} items` }]);
});
