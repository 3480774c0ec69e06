import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig, type ConfigWarning } from '../../agent/src/config/load.js';
import { nearMatches } from '../../agent/src/config/labels.js';

type Example = {
  detector: { model: string; labels: string[] };
  stateDir: string;
  cameras: Array<{ source: Record<string, unknown>; rules: { rules: Array<{ classes?: string[] }> } }>;
  link?: unknown;
  ota?: unknown;
};

const COCO_META = 'configs/models/coco-centernet.meta.json';
const cocoLabels = (JSON.parse(readFileSync(COCO_META, 'utf8')) as { labels: string[] }).labels;

/** The example config in a directory of its own, with the CenterNet model's real metadata beside its model path. */
async function load(edit: (c: Example) => void, setup?: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'ef-labels-'));
  try {
    const cfg = JSON.parse(readFileSync('configs/agent.example.json', 'utf8')) as Example;
    cfg.detector.model = 'model.onnx';
    cfg.stateDir = 'state';
    delete (cfg as { board?: string }).board;
    copyFileSync(COCO_META, join(dir, 'model.meta.json'));
    edit(cfg);
    setup?.(dir);
    writeFileSync(join(dir, 'agent.json'), JSON.stringify(cfg));
    const warnings: ConfigWarning[] = [];
    return await loadAgentConfig(join(dir, 'agent.json'), { onWarning: (w) => warnings.push(w) }).then(
      (c) => ({ ok: true as const, config: c, warnings }),
      (err: Error & { issues?: Array<{ path: string; expected: string; received: string }> }) => ({ ok: false as const, err, warnings }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a misspelt class in a rule or in detector.labels is refused, naming the field and the label meant', async () => {
  const rule = await load((c) => { c.cameras[0].rules.rules[0].classes = ['persn']; });
  assert.equal(rule.ok, false);
  assert.deepEqual(rule.ok ? [] : rule.err.issues, [{
    path: '/cameras/0/rules/rules/0/classes/0', expected: 'a label of the model coco-centernet 1.0.0 (did you mean "person"?)', received: '"persn"',
  }]);
  assert.match(rule.ok ? '' : rule.err.message, /classes\/0: expected a label of the model coco-centernet 1\.0\.0 \(did you mean "person"\?\) but received "persn"/);
  const labels = await load((c) => { c.detector.labels = ['person', 'Car', 'trafic-light']; });
  assert.deepEqual(labels.ok ? [] : labels.err.issues?.map((i) => [i.path, i.expected.replace(/.*\((.*)\)$/, '$1')]), [
    ['/detector/labels/1', 'did you mean "car"?'],
    ['/detector/labels/2', 'did you mean "traffic light"?'],
  ]);
});

test('a name with no label near it points at the model\'s list; the example config, and a model with no labels, pass', async () => {
  const r = await load((c) => { c.cameras[0].rules.rules[1].classes = ['forklift']; });
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.err.issues?.[0].expected ?? '', /^a label of the model coco-centernet 1\.0\.0 \(its 80 labels are listed in .*model\.meta\.json\)$/);
  assert.equal((await load(() => undefined)).ok, true);
  const unlabelled = await load((c) => { c.detector.labels = []; c.cameras[0].rules.rules[0].classes = ['anything']; }, (dir) => {
    const meta = JSON.parse(readFileSync(join(dir, 'model.meta.json'), 'utf8')) as { labels: string[] };
    writeFileSync(join(dir, 'model.meta.json'), JSON.stringify({ ...meta, labels: [] }));
  });
  assert.equal(unlabelled.ok, true);
});

test('without the model\'s metadata there is nothing to check names against (check-config reports the missing file)', async () => {
  const r = await load((c) => { c.detector.labels = []; c.cameras[0].rules.rules[0].classes = ['persn']; }, (dir) => rmSync(join(dir, 'model.meta.json')));
  assert.equal(r.ok, true);
});

test('with ota, a class of a model installed over the air is accepted; one no model on the box has yet is a warning, not a refusal', async () => {
  const withOta = (classes: string[], labels: string[] = []) => (c: Example) => {
    c.link = { url: 'mqtt://127.0.0.1:1883' };
    c.ota = { publicKeyFile: 'fleet.pub' };
    c.detector.labels = labels;
    c.cameras[0].rules.rules[0].classes = classes;
  };
  const install = (dir: string) => {
    const v = join(dir, 'state/models/detector/versions/2.0.0');
    mkdirSync(v, { recursive: true });
    const meta = JSON.parse(readFileSync(COCO_META, 'utf8')) as Record<string, unknown>;
    writeFileSync(join(v, 'model.meta.json'), JSON.stringify({ ...meta, name: 'yard', version: '2.0.0', labels: ['person', 'forklift'] }));
  };
  const installed = await load(withOta(['forklift']), install);
  assert.equal(installed.ok, true);
  assert.deepEqual(installed.warnings, []);
  const typo = await load(withOta(['forklfit']), install);
  assert.equal(typo.ok, true, 'the agent must start to receive the model that may bring the class');
  assert.deepEqual(typo.warnings.map((w) => [w.path, w.expected, w.received]), [
    ['/cameras/0/rules/rules/0/classes/0', 'a label of the model coco-centernet 1.0.0 or the version installed over the air (did you mean "forklift"?)', '"forklfit"'],
  ]);
  // A rule written before the model that detects forklifts is rolled out: the box must start, or the rollout never reaches it.
  const fresh = await load(withOta(['forklift']));
  assert.equal(fresh.ok, true, 'nothing installed yet: a warning, not a refusal');
  assert.equal(fresh.warnings.length, 1);
  assert.match(fresh.warnings[0].message, /^\/cameras\/0\/rules\/rules\/0\/classes\/0: expected a label of the model coco-centernet 1\.0\.0 .* but received "forklift"; accepted because ota is set, but nothing of that class is detected until a model that has it is installed over the air/);
  // detector.labels too.
  const kept = await load(withOta(['forklift'], ['person', 'forklift']));
  assert.equal(kept.ok, true);
  assert.deepEqual(kept.warnings.map((w) => w.path), ['/detector/labels/1', '/cameras/0/rules/rules/0/classes/0']);
  // A class that detector.labels drops can never fire, whichever model runs: still refused.
  const dropped = await load(withOta(['forklift'], ['person']));
  assert.equal(dropped.ok, false);
  assert.deepEqual(dropped.ok ? [] : dropped.err.issues?.map((i) => [i.path, i.received]), [['/cameras/0/rules/rules/0/classes/0', '"forklift"']]);
  assert.match(dropped.ok ? '' : dropped.err.issues?.[0].expected ?? '', /add "forklift" to detector\.labels$/);
  assert.equal(dropped.warnings.length, 1, 'the unknown name is still warned about');
});

test('without ota a name no model has is refused (nothing can bring it), as before', async () => {
  const r = await load((c) => { c.detector.labels = []; c.cameras[0].rules.rules[0].classes = ['forklift']; });
  assert.equal(r.ok, false);
  assert.deepEqual(r.warnings, []);
});

test('near matches: case, separators, one or two edits, swapped letters, one name inside the other', () => {
  assert.deepEqual(nearMatches('persn', cocoLabels), ['person']);
  assert.deepEqual(nearMatches('preson', cocoLabels), ['person']);
  assert.deepEqual(nearMatches('PERSON', cocoLabels), ['person']);
  assert.deepEqual(nearMatches('cars', cocoLabels), ['car']);
  assert.deepEqual(nearMatches('stop_sign', cocoLabels), ['stop sign']);
  assert.deepEqual(nearMatches('phone', cocoLabels), ['cell phone']);
  assert.deepEqual(nearMatches('forklift', cocoLabels), []);
  assert.deepEqual(nearMatches('cat', ['car', 'Cat', 'cow']), ['Cat']);
  assert.deepEqual(nearMatches('cot', ['car', 'cat', 'cow']), ['cat', 'cow']);
});

test('a rule class that detector.labels drops is refused (the rule would never see it); a typo is reported once', async () => {
  const r = await load((c) => {
    c.detector.labels = ['person', 'bicycle'];
    c.cameras[0].rules.rules[0].classes = ['person', 'car', 'persn'];
  });
  assert.equal(r.ok, false);
  const issues = r.ok ? [] : r.err.issues ?? [];
  assert.deepEqual(issues.map((i) => [i.path, i.received]), [['/cameras/0/rules/rules/0/classes/2', '"persn"'], ['/cameras/0/rules/rules/0/classes/1', '"car"']]);
  assert.match(issues[1].expected, /^a class that detector\.labels keeps \("person", "bicycle"\).*add "car" to detector\.labels$/);
  // Without the model's metadata the filter still tells.
  const bare = await load((c) => {
    c.detector.labels = ['person'];
    c.cameras[0].rules.rules[0].classes = ['car'];
  }, (dir) => rmSync(join(dir, 'model.meta.json')));
  assert.deepEqual(bare.ok ? [] : bare.err.issues?.map((i) => i.path), ['/cameras/0/rules/rules/0/classes/0']);
  // Every label kept (detector.labels empty): any class of the model is fine.
  assert.equal((await load((c) => { c.detector.labels = []; c.cameras[0].rules.rules[0].classes = ['car']; })).ok, true);
});
