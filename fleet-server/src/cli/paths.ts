/** Path checks shared by the model commands that run for minutes before they write. */
import { access, constants, mkdir } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../../../agent/src/cli/dispatch.js';
import { InputError } from '../../../agent/src/util/errors.js';

/**
 * Before minutes of calibration or conversion: every output can be written, and none is the input model (-o IN.onnx
 * replaced the FP32 file with its INT8 build or its TFLite export). Creates the output directories, as the writes would.
 */
export async function checkOutputs(model: string, outputs: string[]): Promise<void> {
  for (const out of outputs) {
    if (resolve(out) === resolve(model)) throw new UsageError(`Expected an output path other than the input model ${model}; writing ${out} would replace the input model`);
    if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`Expected a file path for ${out} but it is a directory; name the file (e.g. ${join(out, 'model.int8.onnx')})`);
    try {
      await mkdir(dirname(out), { recursive: true });
      await access(dirname(out), constants.W_OK);
    } catch (err) {
      throw new UsageError(`Cannot write ${out}: ${(err as Error).message}`);
    }
  }
}

/** An input file named by `option` exists (a raw ENOENT from deep inside a command names no option). */
export function requireFile(option: string, path: string): void {
  if (!existsSync(path)) throw new InputError(`${option} ${path} does not exist`);
  if (statSync(path).isDirectory()) throw new InputError(`${option} ${path} is a directory; name the model file in it`);
}
