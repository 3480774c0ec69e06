/**
 * `fleetctl model publish DIR` signed a model whose metadata names an input the ONNX graph does not
 * have (a renamed export, another model's metadata): every agent's detector then refused it at load.
 * Now publish refuses it, naming the metadata's input and the graph's inputs; a name the graph has,
 * or none (the first input), still publishes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { scratchRegistry } from '../helpers/registry.js';
import { standInMeta, standInModel } from '../helpers/ota-models.js';

const { dir, registry, key } = scratchRegistry('ef-publish-input-');

function stage(name: string, meta: Record<string, unknown>): string {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'model.onnx'), standInModel('good'));
  writeFileSync(join(d, 'model.meta.json'), JSON.stringify(meta));
  return d;
}

test('a metadata input name the ONNX graph lacks is refused, naming it and the graph inputs; nothing is published', async () => {
  const d = stage('wrong-input', { ...standInMeta('m', '1.0.0'), input: 'input_1' });
  await assert.rejects(publishModelDir(registry, key, { dir: d }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_INPUT');
    assert.match(err.message, /wrong-input\/model\.meta\.json names the input "input_1", which .*wrong-input\/model\.onnx does not have \(its inputs: images \[1, 16, 16, 3\]\)/);
    return true;
  });
  assert.deepEqual(registry.list(), []);
});

test('a metadata input name the graph has, or none, publishes with that input first', async () => {
  const named = await publishModelDir(registry, key, { dir: stage('named', standInMeta('m', '1.0.0')) });
  assert.equal(named.record.manifest.inputs[0].name, 'images');
  const { input: _input, ...unnamed } = standInMeta('m', '1.0.1');
  const first = await publishModelDir(registry, key, { dir: stage('unnamed', unnamed) });
  assert.equal(first.record.manifest.inputs[0].name, 'images');
});
