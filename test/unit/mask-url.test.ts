/** Camera URLs carry credentials; errors that quote them reach the journal and telemetry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskUrlCredentials } from '../../agent/src/util/mask-url.js';

test('URL credentials are masked wherever they appear in a text', () => {
  assert.equal(maskUrlCredentials('rtsp://admin:s3cret@10.0.0.21:554/stream1'), 'rtsp://***@10.0.0.21:554/stream1');
  assert.equal(maskUrlCredentials('rtspsrc location="rtsps://op:p@ss@cam.local/s" latency=200'), 'rtspsrc location="rtsps://***@cam.local/s" latency=200');
  assert.equal(maskUrlCredentials('Could not open rtsp://u@h/a and http://x:y@h2/b.'), 'Could not open rtsp://***@h/a and http://***@h2/b.');
  assert.equal(maskUrlCredentials('rtsp://10.0.0.5/cam/realmonitor?channel=1&user=admin&password=hunter2'), 'rtsp://10.0.0.5/cam/realmonitor?channel=1&user=admin&password=***');
  assert.equal(maskUrlCredentials('rtspsrc location=rtsp://h/s user-id=admin user-pw=hunter2'), 'rtspsrc location=rtsp://h/s user-id=admin user-pw=***');
});

test('a text without credentials is unchanged', () => {
  for (const s of ['rtsp://10.0.0.21/stream1', 'Could not connect to 10.0.0.21 (Generic error)', 'mail me at a@b.c', 'x=1&y=2']) {
    assert.equal(maskUrlCredentials(s), s);
  }
});
