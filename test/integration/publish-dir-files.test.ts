/**
 * An empty model.meta.json or a gate.json cut short made `fleetctl model publish DIR` fail with
 * "Unexpected end of JSON input", naming no file. Now the refusal names the file and how to write it again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { missingAssets } from '../helpers/assets.js';
import { scratchRegistry } from '../helpers/registry.js';

const SRC = 'assets/models/blazeface-back';
const { dir, registry, key } = scratchRegistry('ef-publish-files-');
const skip = missingAssets(join(SRC, 'model.onnx'));

function stage(name: string, meta: string, gate?: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  copyFileSync(join(SRC, 'model.onnx'), join(d, 'model.onnx'));
  writeFileSync(join(d, 'model.meta.json'), meta);
  if (gate !== undefined) writeFileSync(join(d, 'gate.json'), gate);
  return d;
}

test('an empty or cut-short model.meta.json or gate.json is refused naming the file and the fix', { skip }, async () => {
  const meta = readFileSync(join(SRC, 'model.meta.json'), 'utf8');
  await assert.rejects(publishModelDir(registry, key, { dir: stage('empty-meta', '') }),
    (err: Error & { code?: string }) => err.code === 'E_INPUT' && /empty-meta\/model\.meta\.json is empty; write it again \(fleetctl model import/.test(err.message));
  await assert.rejects(publishModelDir(registry, key, { dir: stage('cut-meta', meta.slice(0, 100)) }),
    /cut-meta\/model\.meta\.json is not valid JSON \(.*\); write it again/);
  const gate = JSON.stringify({ precision: 'int8', artifact: { file: 'model.onnx', sha256: '0'.repeat(64), size: 1 }, decision: { pass: true, mapDrop: 0 } });
  await assert.rejects(publishModelDir(registry, key, { dir: stage('cut-gate', meta, gate.slice(0, 40)) }),
    (err: Error & { code?: string }) => err.code === 'E_GATE' && /cut-gate\/gate\.json is not valid JSON \(.*\); run the gate again: fleetctl model publish --model FILE/.test(err.message));
  assert.deepEqual(registry.list(), []);
});
