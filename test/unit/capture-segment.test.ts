/** Frame.segment numbers a source's capture connections: rules and tracking start afresh when it changes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { standInCamera } from '../helpers/gst-stand-in.js';

const source = compileSchema(SourceConfig);

/** A camera that sends `perConnection[n]` 2×2 frames on its n-th connection, then hangs up (EOS). */
const camera = (perConnection: readonly number[]) => standInCamera({ perConnection, framerate: '10/1' });

test('every frame says which connection it came from: 0, then one more at each reconnect, one that brought nothing included', async () => {
  const src = new GstFrameSource({
    config: source.parse({ kind: 'rtsp', url: 'rtsp://cam/1', maxFrames: 5 }, 's'),
    gst: camera([2, 0, 1, 2]), random: () => 0.5, sleep: async () => undefined,
  });
  const got: Array<[number, number | undefined]> = [];
  for await (const f of src.frames()) got.push([f.index, f.segment]);
  assert.deepEqual(got, [[0, 0], [1, 0], [2, 2], [3, 3], [4, 3]]);
});

test('a file is one connection: segment 0 on every frame', async () => {
  const src = new GstFrameSource({ config: source.parse({ kind: 'file', path: 'a.mp4' }, 's'), gst: camera([3]) });
  const segments: Array<number | undefined> = [];
  for await (const f of src.frames()) segments.push(f.segment);
  assert.deepEqual(segments, [0, 0, 0]);
});
