/**
 * `fleetctl model publish DIR` signs with the fleet's existing key, in the server's data dir: a
 * mistyped --data-dir (or one whose server never started, no key) is refused and nothing is written;
 * --create makes the data dir and key for a new fleet. A typo exited 0 with a new registry and a new
 * key that no agent pins, so every device would have refused the model (E_SIGNATURE).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeStandIn } from '../helpers/ota-models.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-publish-data-dir-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('model publish refuses a data dir that does not exist or has no signing key, unless --create', async () => {
  const model = writeStandIn(join(dir, 'src'), { name: 'standin', version: '2.0.0' });

  const typo = join(dir, 'no-such-data-dir');
  const wrong = await runCli('fleetctl', ['model', 'publish', model, '--data-dir', typo]);
  assert.equal(wrong.code, 4, wrong.stdout + wrong.stderr);
  assert.match(wrong.stderr, /data dir .*no-such-data-dir \(--data-dir\) does not exist.*--create/);
  assert.ok(!existsSync(typo), 'nothing created');

  const keyless = join(dir, 'keyless');
  mkdirSync(keyless);
  const noKey = await runCli('fleetctl', ['model', 'publish', model, '--data-dir', keyless]);
  assert.equal(noKey.code, 4, noKey.stdout + noKey.stderr);
  assert.match(noKey.stderr, /No signing key at .*keyless\/keys\/signing-key\.pem.*server creates its key at first start/);
  assert.deepEqual(readdirSync(keyless), [], 'no key, no registry written');

  const fresh = join(dir, 'new-fleet');
  const created = await runCli('fleetctl', ['model', 'publish', model, '--data-dir', fresh, '--create']);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /published standin@2\.0\.0 onnx-cpu/);
  assert.match(created.stderr, /created a new signing key .*new-fleet\/keys\/signing-key\.pem/);
  const again = await runCli('fleetctl', ['model', 'publish', model, '--data-dir', fresh]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already published \(same bytes\)/);
  assert.equal(again.stderr, '', 'the existing key, no note');
});
