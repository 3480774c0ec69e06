import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { EXIT, exitCodeFor, UsageError } from '../../agent/src/cli/dispatch.js';
import { runCli } from '../helpers/cli.js';

test('an unknown or malformed option is a usage error (exit 2) in every command, not a failure', () => {
  let thrown: unknown;
  try {
    parseArgs({ args: ['--nope'], options: { model: { type: 'string' } }, strict: true });
  } catch (err) {
    thrown = err;
  }
  assert.equal(exitCodeFor(thrown), EXIT.usage);
  assert.equal(exitCodeFor(new UsageError('missing --model')), EXIT.usage);
  assert.equal(exitCodeFor(new Error('boom')), EXIT.failure);
});

test('a command that parses its own options prints its usage on a bad one', async () => {
  const r = await runCli('fleetctl', ['model', 'export', '--bogus'], { timeoutMs: 30_000 });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown option '--bogus'[\s\S]*usage: fleetctl model export/);
});

test('a command group alone lists its commands: --help exits 0, bare exits 2; a missing --model file is an input error', async () => {
  const help = await runCli('fleetctl', ['model', '--help'], { timeoutMs: 30_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /usage: fleetctl model <command>[\s\S]*model quantize/);
  assert.doesNotMatch(help.stdout, /rollout create/);
  const bare = await runCli('fleetctl', ['rollout'], { timeoutMs: 30_000 });
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /rollout status/);
  const missing = await runCli('fleetctl', ['model', 'quantize', '--model', '/nonexistent/m.onnx', '--calib', '/tmp', '-o', '/tmp/ef-never.onnx'], { timeoutMs: 30_000 });
  assert.equal(missing.code, EXIT.input, missing.stderr);
  assert.match(missing.stderr, /--model \/nonexistent\/m\.onnx does not exist/);
});

test('help lists each command as it is typed: edge-agent check-config, fleetctl model quantize', async () => {
  // edge-agent has no command groups: it listed "check config", which it then refused as unknown command 'check'.
  const agent = await runCli('edge-agent', ['--help'], { timeoutMs: 30_000 });
  assert.match(agent.stdout, /^ {2}check-config +validate/m);
  assert.match(agent.stdout, /^ {2}eval-tracking +measure/m);
  const typed = await runCli('edge-agent', ['eval-tracking'], { timeoutMs: 30_000 });
  assert.match(typed.stderr, /^edge-agent eval-tracking: Expected --input/m);
  const fleet = await runCli('fleetctl', ['--help'], { timeoutMs: 30_000 });
  assert.match(fleet.stdout, /^ {2}model quantize +/m);
});
