/**
 * A short write (a nearly full disk, a file-size limit) must not be renamed over a good file: the
 * agent keeps current.json, committed.json and desired-rev.json this way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../agent/src/ota/fs-atomic.js';

test('writeFileAtomic replaces the file whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-atomic-'));
  try {
    const target = join(dir, 'current.json');
    writeFileSync(target, '{"version":"1.0.0"}');
    const big = JSON.stringify({ pad: 'y'.repeat(300_000) });
    writeFileAtomic(target, big);
    assert.equal(readFileSync(target, 'utf8'), big);
    assert.deepEqual(readdirSync(dir), ['current.json'], 'no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a write cut short by a file-size limit leaves the good file in place and no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-atomic-'));
  try {
    const target = join(dir, 'desired-rev.json');
    const good = '{"rev":7,"ts":1}';
    writeFileSync(target, good);
    // ulimit -f counts 1024-byte blocks on bash: 4 KiB, and the new file is 8 KiB.
    const out = execFileSync('bash', ['-c', `ulimit -f 4 && exec "${process.execPath}" --import tsx test/helpers/atomic-write-child.ts "$0" 8100`, target], { encoding: 'utf8' });
    assert.match(out, /^refused: EFBIG/m);
    assert.equal(readFileSync(target, 'utf8'), good, 'the good file is untouched');
    assert.deepEqual(readdirSync(dir), ['desired-rev.json'], 'the short temp file is removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
