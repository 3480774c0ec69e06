/**
 * The config the installer writes from the example names its models under
 * /var/lib/edge-agent/models/factory/NAME/ (cc8bb2e), while docs/operations.md had them copied to
 * factory/ and factory/blazeface/: an operator who followed the docs had a box that did not start.
 * This runs the docs' copy steps, as written there, after the real installer (in the install sandbox,
 * test/helpers/install-sandbox.ts) and checks that every file the installed config names is there,
 * and that the docs' whole-config example names only files those steps copied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inSandbox, makeRelease } from '../helpers/install-sandbox.js';
import { REPO } from '../helpers/repo.js';

const DOC = readFileSync(join(REPO, 'docs/operations.md'), 'utf8');

/** The fenced blocks of `lang` in the doc. */
const blocks = (lang: string) => [...DOC.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);

/** Every string under /var/lib/edge-agent/ in a config, but the state directory itself. */
function stateFiles(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('/var/lib/edge-agent/') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(stateFiles);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stateFiles);
  return [];
}

test('the docs copy the models (and the demo video) to where the installed config names them', { timeout: 60_000 }, (t) => {
  const copy = blocks('sh').filter((b) => b.includes('/var/lib/edge-agent/models/factory/'));
  assert.equal(copy.length, 1, 'one sh block of docs/operations.md copies the models to /var/lib/edge-agent/models/factory/');
  const example = blocks('json').map((b) => JSON.parse(b) as { stateDir?: string }).filter((c) => c.stateDir === '/var/lib/edge-agent');
  assert.equal(example.length, 1, 'one whole config example with stateDir /var/lib/edge-agent in docs/operations.md');
  inSandbox(t, (sb) => {
    const rel = makeRelease(sb.dir, '0.1.0');
    copyFileSync(join(REPO, 'configs/agent.example.json'), join(rel, 'configs/agent.example.json'));
    const installed = sb.run(`${rel}/scripts/install-agent.sh --no-start`);
    assert.equal(installed.status, 0, installed.output);
    const config: unknown = JSON.parse(readFileSync(join(sb.dir, 'etc-upper/edge-agent/agent.json'), 'utf8'));
    const files = stateFiles(config);
    const models = files.filter((f) => f.endsWith('.onnx'));
    assert.ok(models.length >= 3, `the installed config names its models under /var/lib/edge-agent: ${files.join(', ')}`);
    // As the operator runs it (root here, so without sudo), from a checkout: this repository.
    const wanted = [...files, ...models.map((m) => m.replace(/\.onnx$/, '.meta.json')), ...stateFiles(example[0])];
    const r = sb.run([
      `cd ${REPO}`,
      copy[0].replace(/^sudo /gm, ''),
      'missing=0',
      ...wanted.map((f) => `[ -f '${f}' ] || { echo "not there: ${f}"; missing=1; }`),
      'exit $missing',
    ].join('\n'));
    assert.equal(r.status, 0, r.output);
  });
});
