/**
 * edge-agent check-config as an operator runs it on a box with OTA: a rule for a class that the
 * model rolled out next will bring is a warning (printed, exit 0), since refusing it kept the agent
 * from starting and so from ever receiving that model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { runCli } from '../helpers/cli.js';
import { missingAssets } from '../helpers/assets.js';
import { tempDirForFile } from '../helpers/temp-dir.js';

const MODEL = resolve('assets/models/coco-centernet/model.onnx');
const FACE_MODEL = resolve('assets/models/blazeface-back/model.onnx');
const skip = missingAssets(MODEL, FACE_MODEL);
const dir = tempDirForFile('ef-check-warn-');

function writeConfig(name: string, opts: { ota: boolean; classes: string[]; labels?: string[] }): string {
  writeFileSync(join(dir, 'fleet.pub'), 'key');
  const cfg = {
    stateDir: join(dir, 'state'),
    detector: { model: MODEL, labels: opts.labels ?? [] },
    link: { url: 'mqtt://127.0.0.1:1883' },
    ...(opts.ota ? { ota: { publicKeyFile: join(dir, 'fleet.pub') } } : {}),
    privacy: { faces: { modelPath: FACE_MODEL } },
    cameras: [{
      source: { kind: 'test' },
      rules: { rules: [{ type: 'zone', id: 'dock', classes: opts.classes, polygon: [{ x: 10, y: 10 }, { x: 300, y: 10 }, { x: 300, y: 300 }] }] },
    }],
  };
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

test('with ota, a class no model on the box has yet is printed as a warning and the config passes (exit 0)', { skip }, async () => {
  const file = writeConfig('ota.json', { ota: true, classes: ['forklift'] });
  const human = await runCli('edge-agent', ['check-config', file], { timeoutMs: 30_000 });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /: valid \(1 camera, model .*, 1 warning\)/);
  assert.match(human.stderr, /^warning: \/cameras\/0\/rules\/rules\/0\/classes\/0: expected a label of the model coco-centernet 1\.0\.0 .* but received "forklift"; accepted because ota is set/m);
  const json = await runCli('edge-agent', ['check-config', file, '--json'], { timeoutMs: 30_000 });
  assert.equal(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { ok: boolean; warnings: Array<{ path: string; received: string }> };
  assert.equal(out.ok, true);
  assert.deepEqual(out.warnings.map((w) => [w.path, w.received]), [['/cameras/0/rules/rules/0/classes/0', '"forklift"']]);
  // A valid config without warnings says nothing more.
  const clean = await runCli('edge-agent', ['check-config', writeConfig('clean.json', { ota: true, classes: ['person'] })], { timeoutMs: 30_000 });
  assert.equal(clean.code, 0, clean.stderr);
  assert.doesNotMatch(clean.stdout + clean.stderr, /warning/);
});

test('without ota the same class is refused (exit 3): no model can arrive that has it', { skip }, async () => {
  const r = await runCli('edge-agent', ['check-config', writeConfig('no-ota.json', { ota: false, classes: ['forklift'] }), '--json'], { timeoutMs: 30_000 });
  assert.equal(r.code, 3, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; issues: Array<{ path: string }>; warnings: unknown[] };
  assert.deepEqual(out.issues.map((i) => i.path), ['/cameras/0/rules/rules/0/classes/0']);
  assert.deepEqual(out.warnings, []);
});

test('run and a reload log the warning when they load the config (module "config")', { skip }, async () => {
  const file = writeConfig('run.json', { ota: true, classes: ['forklift'] });
  // loadAgentConfig as run.ts calls it at start and on SIGHUP, without a warning handler.
  const script = `const { loadAgentConfig } = await import(${JSON.stringify(resolve('agent/src/config/load.ts'))}); await loadAgentConfig(${JSON.stringify(file)});`;
  const r = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { env: { ...process.env, EF_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; module: string; path: string; msg: string });
  assert.deepEqual(lines.map((l) => [l.level, l.module, l.path]), [[40, 'config', '/cameras/0/rules/rules/0/classes/0']]);
  assert.match(lines[0].msg, /received "forklift"; accepted because ota is set/);
});
