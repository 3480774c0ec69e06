import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../../agent/src/config/load.js';
import { parseJsonText, syntaxErrorOffset } from '../../agent/src/config/json-text.js';

const example = readFileSync('configs/agent.example.json', 'utf8');

async function loadError(text: string): Promise<Error & { code?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-json-'));
  try {
    writeFileSync(join(dir, 'agent.json'), text);
    return await loadAgentConfig(join(dir, 'agent.json')).then(() => assert.fail('loaded'), (err: Error) => err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a config with a missing comma names the line and column and shows the lines there, not a byte offset', async () => {
  const broken = example.replace('"demo-01",', '"demo-01"');
  const err = await loadError(broken);
  assert.equal(err.code, 'E_CONFIG');
  assert.doesNotMatch(err.message, /position/);
  assert.match(err.message, /is not valid JSON: Expected ',' or '}' after property value at line 3, column 3\n/);
  const shown = err.message.split('\n').slice(1);
  assert.deepEqual(shown, ['  2 |   "deviceId": "demo-01"', '  3 |   "board": "generic-x86",', '    |   ^']);
});

test('a trailing comma deep in the file is placed at its line', async () => {
  const broken = example.replace('"interval": 3', '"interval": 3,');
  const lines = broken.split('\n');
  const at = lines.findIndex((l) => l.includes('"interval": 3,')) + 2;
  const err = await loadError(broken);
  assert.match(err.message, new RegExp(`Expected double-quoted property name at line ${at}, column 3\\n`));
  assert.ok(err.message.includes(`${at} |   },`), err.message);
});

test('errors V8 reports without an offset (a misspelt literal, the end of the file) are placed too', () => {
  assert.throws(() => parseJsonText('{\n  "a": True\n}', 'f'), (err: Error) => {
    assert.match(err.message, /^f is not valid JSON: Unexpected token 'T' at line 2, column 8\n/);
    assert.ok(err.message.endsWith('  2 |   "a": True\n    |        ^'), err.message);
    return true;
  });
  assert.throws(() => parseJsonText('{\n  "a": nul', 'f'), /Unexpected end of the file at line 2, column 11/);
  assert.throws(() => parseJsonText('', 'f'), /Unexpected end of the file at line 1, column 1/);
});

test('a long one-line file shows the part of the line around the column', () => {
  const text = `{${Array.from({ length: 200 }, (_, i) => `"k${i}": ${i}`).join(', ')}, "x": tru }`;
  assert.throws(() => parseJsonText(text, 'f'), (err: Error) => {
    const [, shown, caret] = err.message.split('\n');
    assert.ok(shown.length < 140, shown);
    assert.ok(shown.includes('"x": tru }'), shown);
    assert.equal(caret.indexOf('^'), shown.indexOf('tru }') + 3);
    return true;
  });
});

test('the offset found for errors V8 does not place is the one V8 gives where it does', () => {
  const broken = ['{"a": 1,}', '{"a" 1}', '[1 2]', '{"a": -}', '{"a": 1} x', '{"a": "b', '{"a": 1.}', '{a: 1}', '{"a": 01}', '{"a": "\u0001"}', '{"a": 1e}', '{"a": "\\x"}'];
  for (const text of broken) {
    const v8 = (() => { try { JSON.parse(text); return undefined; } catch (e) { return /at position (\d+)/.exec((e as Error).message)?.[1]; } })();
    assert.ok(v8 !== undefined, text);
    assert.equal(syntaxErrorOffset(text), Number(v8), text);
  }
});
