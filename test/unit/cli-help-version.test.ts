import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';

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
