import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { resolveMetadataArg } from '../../fleet-server/src/convert/import-model.js';

// fleetctl runs from wherever the operator stands (the docs run node /opt/edge-fleet/current/dist/fleetctl.mjs);
// presets were looked for in ./configs/models only, so --meta coco-centernet failed outside the checkout's root.
test('a metadata preset name is found from any working directory; anything else is a path', () => {
  const cwd = process.cwd();
  const dir = mkdtempSync(join(tmpdir(), 'ef-presets-'));
  try {
    process.chdir(dir);
    const p = resolveMetadataArg('coco-centernet');
    assert.ok(isAbsolute(p) && existsSync(p) && p.endsWith('configs/models/coco-centernet.meta.json'), p);
    assert.equal(resolveMetadataArg('no-such-preset'), 'no-such-preset');
    assert.equal(resolveMetadataArg('./my.meta.json'), './my.meta.json');
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});
