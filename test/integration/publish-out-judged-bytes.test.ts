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

test('gate options given to an fp32 artifact are refused as a usage error, not ignored; an fp16 artifact gated needs both --reference and --data; nothing is written', async () => {
  const { commandOutcome } = await import('../helpers/cli.js');
  const out = join(tmp, 'fp16-out');
  const one = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'fp16', '--reference', join(SRC, 'model.onnx'), '--out', out]);
  assert.equal(one.code, 2, one.message);
  assert.match(one.message, /^Gating an fp16 artifact needs --reference FP32\.onnx and --data DIR\|VIDEO/);
  const all = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'fp32', '--data', FACES, '--max-drop', '2', '--out', out]);
  assert.equal(all.code, 2, all.message);
  assert.match(all.message, /^--data, --max-drop apply to --precision int8 and fp16 only: a fp32 artifact is published without the accuracy gate/);
  // The gate's frame selection too.
  const frames = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'fp32', '--frames', '6', '--out', out]);
  assert.equal(frames.code, 2, frames.message);
  assert.match(frames.message, /^--frames applies to --precision int8 and fp16 only/);
  const badFrames = await commandOutcome(command, ['--model', join(SRC, 'model.onnx'), '--precision', 'int8', '--reference', join(SRC, 'model.onnx'), '--data', FACES, '--frames', '0', '--out', out]);
  assert.equal(badFrames.code, 2, badFrames.message);
  assert.match(badFrames.message, /Expected --frames to be a positive integer but received "0"/);
  assert.equal(existsSync(out), false);
});

test('an fp16 artifact given --reference and --data goes through the gate: a faithful one is published with its decision, a broken one is refused and nothing is written', { skip, timeout: 120_000 }, async () => {
  const { commandOutcome } = await import('../helpers/cli.js');
  const { convertToFp16 } = await import('../../fleet-server/src/quantize/fp16.js');
  const m = decodeModel(new Uint8Array(readFileSync(join(SRC, 'model.onnx'))));
  const good = join(tmp, 'good.fp16.onnx');
  writeFileSync(good, encodeModel(convertToFp16(m).model));
  copyFileSync(join(SRC, 'model.meta.json'), join(tmp, 'good.fp16.meta.json'));
  const outGood = join(tmp, 'fp16-good');
  const ok = await commandOutcome(command, ['--model', good, '--precision', 'fp16', '--reference', join(SRC, 'model.onnx'), '--data', FACES, '--out', outGood]);
  assert.equal(ok.code, 0, ok.message);
  const gate = JSON.parse(readFileSync(join(outGood, 'gate.json'), 'utf8')) as { precision: string; decision: { pass: boolean; precision: string } | null };
  assert.equal(gate.precision, 'fp16');
  assert.equal(gate.decision?.pass, true, 'the decision is recorded, not null');
  assert.equal(gate.decision?.precision, 'fp16');
  // The same file with every weight's sign flipped in its first 4-D fp16 tensor: it runs, and detects nothing alike.
  const bad = decodeModel(new Uint8Array(readFileSync(good)));
  const w = [...bad.graph.initializers.values()].find((t) => t.dims.length === 4 && t.data.length > 64);
  assert.ok(w);
  for (let i = 1; i < w.data.length; i += 2) w.data[i] ^= 0x80;
  const broken = join(tmp, 'bad.fp16.onnx');
  writeFileSync(broken, encodeModel(bad));
  copyFileSync(join(SRC, 'model.meta.json'), join(tmp, 'bad.fp16.meta.json'));
  const outBad = join(tmp, 'fp16-bad');
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true; }) as typeof process.stderr.write;
  let refused: { code: number; message: string };
  try {
    refused = await commandOutcome(command, ['--model', broken, '--precision', 'fp16', '--reference', join(SRC, 'model.onnx'), '--data', FACES, '--out', outBad]);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(refused.code, 1, refused.message || stderr);
  assert.match(stderr, /^refused: .*publish the FP32 artifact instead\noffer instead: fp32\n$/);
  assert.doesNotMatch(stderr, /FP16 one/, 'an FP16 build is not pointed at itself');
  assert.equal(existsSync(outBad), false, 'nothing written');
});
