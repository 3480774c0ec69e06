import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { binaryEntry, runCli } from '../helpers/cli.js';

test('edge-agent --help lists the version command that README names, and the listed command works', async () => {
  // README's command table lists `edge-agent version`; it ran, but --help did not show it.
  const help = await runCli('edge-agent', ['--help'], { timeoutMs: 30_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^ {2}version +print the edge-agent version/m);
  const version = await runCli('edge-agent', ['version', '--json'], { timeoutMs: 30_000 });
  assert.equal(version.code, 0, version.stderr);
  const out = JSON.parse(version.stdout) as { binary: string; version: string };
  assert.equal(out.binary, 'edge-agent');
  assert.match(out.version, /^\d+\.\d+\.\d+/);
});

test('a reader that goes away before the output (fleetctl … | true) does not make the command fail: no EPIPE crash, its own exit code', () => {
  // `true` exits without reading; the command's write then meets a closed pipe (node ignores SIGPIPE).
  // Before, that write's EPIPE was an unhandled 'error' event: a stack trace and exit code 1.
  const cmd = 'set -o pipefail; "$0" "$1" model quantize --help | true; echo "status=${PIPESTATUS[0]}" >&2';
  const r = spawnSync('bash', ['-c', cmd, process.execPath, binaryEntry('fleetctl')], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, EF_LOG_LEVEL: 'warn' } });
  assert.match(r.stderr, /status=0\n$/, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
});
