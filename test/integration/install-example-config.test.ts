/**
 * The config written at first install from the release's example pointed at ../assets, which under
 * /etc named /etc/assets. Real installer in a private mount namespace (test/helpers/install-sandbox.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inSandbox, makeRelease } from '../helpers/install-sandbox.js';
import { REPO } from '../helpers/repo.js';


test('the config written at first install from the example points at absolute paths under /var/lib/edge-agent, not ../assets under /etc', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0');
    copyFileSync(join(REPO, 'configs/agent.example.json'), join(v1, 'configs/agent.example.json'));
    const r = sb.run(`${v1}/scripts/install-agent.sh --no-start`);
    assert.equal(r.status, 0, r.output);
    const cfg = JSON.parse(readFileSync(join(sb.dir, 'etc-upper/edge-agent/agent.json'), 'utf8')) as {
      stateDir: string; detector: { model: string }; cameras: Array<{ source: { path?: string } }>;
      privacy: { faces: { modelPath: string }; plates: { textModelPath: string } };
    };
    assert.equal(cfg.stateDir, '/var/lib/edge-agent');
    assert.equal(cfg.detector.model, '/var/lib/edge-agent/models/factory/coco-centernet/model.onnx');
    assert.equal(cfg.privacy.faces.modelPath, '/var/lib/edge-agent/models/factory/blazeface-back/model.onnx');
    assert.equal(cfg.privacy.plates.textModelPath, '/var/lib/edge-agent/models/factory/ppocr-det/model.onnx');
    assert.equal(cfg.cameras[0].source.path, '/var/lib/edge-agent/assets/video/vtest.avi');
    assert.doesNotMatch(readFileSync(join(sb.dir, 'etc-upper/edge-agent/agent.json'), 'utf8'), /\.\.\//);
  });
});
