/**
 * The zone-outside-the-frame check trusts a source's width/height only where the pipeline applies
 * them: a raw `pipeline` source that ends in its own appsink runs as written, at its own size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { crossFieldIssues } from '../../agent/src/config/cross-checks.js';

type Pt = { x: number; y: number };
const square = (x0: number, y0: number, x1: number, y1: number): Pt[] => [{ x: x0, y: y0 }, { x: x1, y: y0 }, { x: x1, y: y1 }, { x: x0, y: y1 }];
// A loading dock in the lower right of a 1920×1080 stream: wholly outside 0..640 × 0..360.
const dock = { type: 'zone', id: 'dock', polygon: square(1200, 600, 1800, 1000) };

function issuesFor(pipeline: string) {
  const source = { kind: 'pipeline', id: 'gate', width: 640, height: 360, pipeline };
  return crossFieldIssues(agentConfigValidator.parse({ detector: { model: 'm.onnx' }, cameras: [{ source, rules: { rules: [dock] } }] }, 'config'));
}

test('a pipeline with its own appsink is not checked against width/height, which it never applies', () => {
  const own = 'rtspsrc location=rtsp://cam/1 ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink max-buffers=2 drop=false';
  assert.deepEqual(issuesFor(own), []);
});

test('a pipeline the agent ends (scaled to width/height) is still checked against that size', () => {
  const issues = issuesFor('rtspsrc location=rtsp://cam/1 ! decodebin');
  assert.deepEqual(issues.map((i) => i.path), ['/cameras/0/rules/rules/0/polygon']);
  assert.match(issues[0].expected, /0\.\.640 × 0\.\.360/);
});
