/**
 * `fleetctl rollout ...` against a fleet server that is not there: the message names the URL, why
 * (connection refused, no answer in time) and --server. It said only 'fetch failed'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { runCli } from '../helpers/cli.js';
import { callApi } from '../../fleet-server/src/cli/device-registry.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

test('fleetctl rollout status against a port nobody listens on names the URL, connection refused and --server', async () => {
  // A port that was free a moment ago: nothing listens on it now.
  const probe = createServer();
  const port = await listen(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const r = await runCli('fleetctl', ['rollout', 'status', '--server', url, '--token', 't']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`Cannot reach the fleet server at ${url} \\(--server ${url}\\) for GET /api/rollouts: connection refused \\(.*ECONNREFUSED.*\\).*--server URL`));
  assert.doesNotMatch(r.stderr, /^fleetctl rollout status: fetch failed$/m);
});

test('a server that accepts the connection and never answers: the call gives up after its timeout and says so', { timeout: 10_000 }, async () => {
  const sockets: Socket[] = [];
  const silent = createServer((s) => { sockets.push(s); });
  const port = await listen(silent);
  try {
    await assert.rejects(callApi(`http://127.0.0.1:${port}`, 't', 'POST', '/api/rollouts/ro-1/abort', undefined, { timeoutMs: 300 }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_CONNECT');
        assert.match(err.message, new RegExp(`at http://127.0.0.1:${port} .*for POST /api/rollouts/ro-1/abort: no answer within 300 ms \\(timeout\\).*--server`));
        return true;
      });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
