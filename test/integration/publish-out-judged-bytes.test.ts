/**
 * `model publish --model M --out DIR` ran the accuracy gate on M (seconds), then copied M into DIR
 * and wrote into gate.json the sha256 of that copy: a build written over M while the gate ran was
 * vouched for by a gate that never judged it. Now the copy must be the bytes the gate judged, or
 * nothing is written to DIR.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { command } from '../../fleet-server/src/cli/commands/model-publish.js';
import { decodeModel, encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';

const SRC = 'assets/models/blazeface-back';
const FACES = 'assets/images/faces';
const missing = [join(SRC, 'model.onnx'), FACES].filter((p) => !existsSync(p));
const skip = missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false;
const tmp = mkdtempSync(join(tmpdir(), 'ef-publish-out-'));
const create = ort.InferenceSession.create;
after(() => { ort.InferenceSession.create = create; rmSync(tmp, { recursive: true, force: true }); });

test('a model rewritten while its gate runs is not written to DIR under that gate', { skip, timeout: 120_000 }, async () => {
  const model = join(tmp, 'candidate.onnx');
  copyFileSync(join(SRC, 'model.onnx'), model);
  copyFileSync(join(SRC, 'model.meta.json'), join(tmp, 'candidate.meta.json'));
  // Another build (one weight changed), written over the candidate once the gate has started.
  const m = decodeModel(new Uint8Array(readFileSync(model)));
  const w = [...m.graph.initializers.values()].find((t) => t.dims.length === 4);
  assert.ok(w?.data);
  w.data[3] ^= 0x01;
  const other = encodeModel(m);
  let rewritten = false;
  ort.InferenceSession.create = (async (...args: Parameters<typeof create>) => {
    if (!rewritten) { writeFileSync(model, other); rewritten = true; }
    return create.apply(ort.InferenceSession, args);
  }) as typeof create;
  const out = join(tmp, 'stage');
  let err: unknown;
  try {
    await command.run(['--model', model, '--precision', 'int8', '--reference', join(SRC, 'model.onnx'), '--data', FACES, '--max-drop', '100', '--max-f1-drop', '100', '--out', out]);
  } catch (e) {
    err = e;
  } finally {
    ort.InferenceSession.create = create;
  }
  assert.ok(rewritten, 'the gate loaded the models');
  assert.match(String((err as Error | undefined)?.message), /changed while it was being gated/);
  assert.deepEqual(existsSync(out) ? readdirSync(out) : [], [], 'nothing written to DIR: no model, metadata or gate.json');
});

test('gate options given to an fp16 or fp32 artifact are refused as a usage error, not ignored, and nothing is written', async () => {
  const { commandOutcome } = await import('../helpers/cli.js');
  const out = join(tmp, 'fp16-out');
  const one = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'fp16', '--reference', join(SRC, 'model.onnx'), '--out', out]);
  assert.equal(one.code, 2, one.message);
  assert.match(one.message, /^--reference applies to --precision int8 only: a fp16 artifact is published without the accuracy gate; drop it, or compare it with fleetctl model evaluate/);
  const all = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'fp32', '--data', FACES, '--max-drop', '2', '--out', out]);
  assert.equal(all.code, 2, all.message);
  assert.match(all.message, /^--data, --max-drop apply to --precision int8 only: a fp32 artifact/);
  assert.equal(existsSync(out), false);
});
