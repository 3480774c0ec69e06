/**
 * configs/schema/agent.schema.json as an editor or a CI linter reads it: plain ajv, no defaults
 * filled in. The configs we publish must pass it, and it must still refuse what the agent refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

const schema = JSON.parse(readFileSync('configs/schema/agent.schema.json', 'utf8')) as object;
// strict: false because the schema carries the agent's own keywords (x-restart, discriminator), as any editor ignores them.
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** The agent configs shown in a Markdown file: its ```json blocks that have cameras. */
function examplesIn(file: string): Array<{ where: string; config: unknown }> {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)]
    .filter((m) => m[1].includes('"cameras"'))
    .map((m) => ({ where: `${file}:${text.slice(0, m.index).split('\n').length}`, config: JSON.parse(m[1]) as unknown }));
}

test('the example configs (configs/, README, operations guide) are valid against the published JSON Schema without defaults', () => {
  const examples = [
    { where: 'configs/agent.example.json', config: JSON.parse(readFileSync('configs/agent.example.json', 'utf8')) as unknown },
    ...examplesIn('README.md'),
    ...examplesIn('docs/operations.md'),
  ];
  assert.ok(examples.length >= 3, `found ${examples.length} examples`);
  for (const { where, config } of examples) {
    assert.ok(validate(config), `${where}: ${JSON.stringify(validate.errors)}`);
  }
});

test('the published schema still requires what has no default and refuses unknown or wrong fields', () => {
  const minimal = { detector: { model: 'm.onnx' }, cameras: [{ source: { kind: 'rtsp', url: 'rtsp://cam/1' } }] };
  assert.ok(validate(minimal), JSON.stringify(validate.errors));
  const refused: Array<[unknown, string]> = [
    [{ cameras: minimal.cameras }, 'detector'],
    [{ detector: {}, cameras: minimal.cameras }, 'model'],
    [{ ...minimal, cameras: [{ source: { kind: 'rtsp' } }] }, 'url'],
    [{ ...minimal, cameras: [{ source: { kind: 'file', path: 'v.avi' }, rules: { rules: [{ type: 'zone', polygon: [] }] } }] }, 'id'],
    [{ ...minimal, telemetery: {} }, 'telemetery'],
    [{ ...minimal, schedule: { interval: 'three' } }, 'integer'],
  ];
  for (const [config, mentioned] of refused) {
    assert.equal(validate(config), false, JSON.stringify(config));
    assert.match(JSON.stringify(validate.errors), new RegExp(mentioned), JSON.stringify(config));
  }
});
