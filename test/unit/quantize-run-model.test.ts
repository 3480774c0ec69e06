/**
 * quantizeModel(opts, calibrated) builds from the run's graph under opts.modelPath's metadata: a run
 * made from another model file wrote that other model as this one's INT8 build. Such a run is now
 * refused (E_INPUT, naming both files), compared by the bytes calibrated, before anything is written;
 * a byte-identical copy of the calibrated model elsewhere is still accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calibrateForModel, quantizeModel } from '../../fleet-server/src/quantize/quantize.js';
import { metadataPathFor } from '../../agent/src/model/metadata.js';
import { withTempDir } from '../helpers/temp-dir.js';

const BLAZEFACE = 'assets/models/blazeface-back/model.onnx';
const FACES = 'assets/images/faces';
const skip = [BLAZEFACE, FACES].some((p) => !existsSync(p)) ? 'sample assets missing; run scripts/setup.sh' : false;

test('a calibration run of another model file is refused; one of the same bytes at another path is used', { skip, timeout: 30_000 }, async () => {
  await withTempDir('ef-quant-run-', async (dir) => {
    const frames = { source: FACES, maxFrames: 1 };
    const run = await calibrateForModel({ modelPath: BLAZEFACE, frames, target: 'cpu' });
    // Another model: the same graph with other bytes (one weight changed), with its own metadata.
    const other = join(dir, 'other.onnx');
    const bytes = readFileSync(BLAZEFACE);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(other, bytes);
    copyFileSync(metadataPathFor(BLAZEFACE), metadataPathFor(other));
    await assert.rejects(
      quantizeModel({ modelPath: other, outputPath: join(dir, 'other.int8.onnx'), frames, method: 'minmax', target: 'cpu' }, run),
      (err: Error & { code?: string }) => err.code === 'E_INPUT' && err.message.includes(BLAZEFACE) && err.message.includes(other),
    );
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('other.int8')), [], 'nothing written');

    const copy = join(dir, 'copy.onnx');
    copyFileSync(BLAZEFACE, copy);
    copyFileSync(metadataPathFor(BLAZEFACE), metadataPathFor(copy));
    const r = await quantizeModel({ modelPath: copy, outputPath: join(dir, 'copy.int8.onnx'), frames, method: 'minmax', target: 'cpu' }, run);
    assert.equal(r.output, join(dir, 'copy.int8.onnx'));
    assert.ok(existsSync(r.output));
  });
});

test('a per-tensor build skips GPTQ (it rounds per channel), and a per-channel run is refused for one', { skip, timeout: 30_000 }, async () => {
  await withTempDir('ef-quant-pt-', async (dir) => {
    const frames = { source: FACES, maxFrames: 1 };
    const perTensor = await calibrateForModel({ modelPath: BLAZEFACE, frames, target: 'cpu', perChannel: false });
    assert.equal(perTensor.gptqConvs, 0);
    const perChannel = await calibrateForModel({ modelPath: BLAZEFACE, frames, target: 'cpu' });
    assert.ok(perChannel.gptqConvs > 0);
    const opts = { modelPath: BLAZEFACE, outputPath: join(dir, 'pt.int8.onnx'), frames, method: 'minmax' as const, target: 'cpu' as const, perChannel: false };
    await assert.rejects(quantizeModel(opts, perChannel), /rounded weights per channel \(GPTQ\); a per-tensor build needs a run made with perChannel false/);
    assert.equal((await quantizeModel(opts, perTensor)).perChannel, false);
  });
});
