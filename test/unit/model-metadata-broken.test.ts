/**
 * A model's .meta.json is written by hand: a syntax error in it is named by line and column (as in
 * the agent config), and check-config refuses a config whose model metadata is broken, naming the
 * file, instead of passing it with its class names unchecked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModelMetadata } from '../../agent/src/model/metadata.js';
import { loadAgentConfig } from '../../agent/src/config/load.js';
import { ConfigError } from '../../agent/src/util/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirForFile } from '../helpers/temp-dir.js';

const dir = tempDirForFile('ef-meta-broken-');
const good = readFileSync(resolve('configs/models/coco-centernet.meta.json'), 'utf8');
// A comma dropped at the end of the "version" line (line 3).
const broken = good.replace(/("version": "[^"]*"),/, '$1');
assert.notEqual(broken, good);

function modelWithMeta(name: string, meta: string): string {
  const model = join(dir, `${name}.onnx`);
  writeFileSync(model, 'not read by these tests');
  writeFileSync(join(dir, `${name}.meta.json`), meta);
  return model;
}

function configFor(model: string, name: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    stateDir: join(dir, 'state'),
    detector: { model },
    cameras: [{ source: { kind: 'test' }, rules: { rules: [{ type: 'zone', id: 'z', classes: ['persn'], polygon: [{ x: 0, y: 0 }, { x: 9, y: 0 }, { x: 9, y: 9 }] }] } }],
  }));
  return file;
}

test('a syntax error in a model metadata file is reported by line and column, with the line', async () => {
  const model = modelWithMeta('syntax', broken);
  await assert.rejects(loadModelMetadata(model), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_MODEL');
    assert.match(err.message, /^Model metadata .*syntax\.meta\.json is not valid JSON: Expected ',' or '}' after property value at line 4, column 3\n/);
    assert.doesNotMatch(err.message, /position \d+/);
    return true;
  });
});

test('a config whose model metadata is broken is refused naming the file, not passed with its labels unchecked', async () => {
  const model = modelWithMeta('cut', broken);
  await assert.rejects(loadAgentConfig(configFor(model, 'cut')), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues.map((i) => i.path), ['/detector/model']);
    assert.match(err.issues[0].expected, /cut\.meta\.json/);
    assert.match(err.issues[0].received, /not valid JSON: .* at line 4, column 3$/);
    return true;
  });
  // Valid JSON that is not valid metadata: each wrong field.
  const noLabels = JSON.parse(good) as Record<string, unknown>;
  delete noLabels.labels;
  const invalid = modelWithMeta('invalid', JSON.stringify(noLabels));
  await assert.rejects(loadAgentConfig(configFor(invalid, 'invalid')), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues.map((i) => i.path), ['/detector/model']);
    assert.match(err.issues[0].expected, /invalid\.meta\.json/);
    assert.match(err.issues[0].received, /labels/);
    return true;
  });
  // The same config with intact metadata has its class names checked (the typo "persn").
  const fine = modelWithMeta('fine', good);
  await assert.rejects(loadAgentConfig(configFor(fine, 'fine')), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues.map((i) => i.path), ['/cameras/0/rules/rules/0/classes/0']);
    return true;
  });
});

test('edge-agent check-config exits 3 on a broken model metadata file and names it', async () => {
  const model = modelWithMeta('cli', broken);
  const r = await runCli('edge-agent', ['check-config', configFor(model, 'cli')], { timeoutMs: 30_000 });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /\/detector\/model: expected model metadata that loads in .*cli\.meta\.json .* but received Model metadata .*cli\.meta\.json is not valid JSON: .* at line 4, column 3/);
});
