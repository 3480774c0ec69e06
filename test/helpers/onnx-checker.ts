/** The ONNX checker of Debian's python3-onnx (`onnx.checker.check_model`, full_check) on a written model file. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Debian's python3 has python3-onnx; a pyenv python3 first on PATH may not. */
const PYTHON = '/usr/bin/python3';

/** Why the checker cannot run here, or undefined when it can. */
export const onnxCheckerMissing: string | undefined = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0
  ? undefined : `${PYTHON} lacks onnx (apt-get install python3-onnx): checker skipped`;

export function assertOnnxChecks(path: string, what = path): void {
  const r = spawnSync(PYTHON, ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, `onnx.checker.check_model(full_check=True) failed for ${what}: ${r.stdout}${r.stderr}`);
}
