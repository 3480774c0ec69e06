/**
 * docs/benchmarks.md renderer (bench/lib/render.ts): goals show pass/miss, a bench without a result
 * or whose part is missing shows "not yet" with its reason, cells format numbers and escape pipes.
 * No bench runs here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderBenchmarks, renderTable, formatCell } from '../../bench/lib/render.js';
import { CATALOG } from '../../bench/lib/catalog.js';
import type { BenchResult } from '../../bench/lib/result.js';
import type { MachineInfo } from '../../bench/lib/machine.js';

const machine: MachineInfo = {
  cpu: 'Test CPU', cores: 2, memoryBytes: 8 * 2 ** 30, os: 'linux test x64', load1AtStart: 1.5, node: 'v20.0.0',
  versions: { 'onnxruntime-node': '1.30.0', sharp: '0.34.5', 'gstreamer-superficial': '1.7.4', gstreamer: '1.22.0', aedes: '1.2.0', mqtt: '5', mosquitto: '2.0.11' },
};

function result(over: Partial<BenchResult>): BenchResult {
  return {
    bench: 'pipeline', item: 1, title: 'Pipeline efficiency', status: 'measured', createdAt: '2026-11-25T21:00:00.000Z', machine,
    method: 'Side by side.', goals: [], tables: [], figures: {}, ...over,
  };
}

test('goals render as pass and miss in the summary and in the section', () => {
  const results = new Map<string, BenchResult>([
    ['pipeline', result({
      goals: [
        { name: 'efficiency, 1 thread', target: '≥ 0.9', value: 0.95, pass: true },
        { name: 'efficiency, 2 threads', target: '≥ 0.9', value: 0.7, pass: false },
      ],
      tables: [{ columns: ['threads', 'fps'], rows: [[1, 5.123], [2, null]] }],
    })],
  ]);
  const md = renderBenchmarks({ catalog: CATALOG, results });
  assert.match(md, /^# Benchmarks/);
  assert.match(md, /\| 1\. Pipeline efficiency \| efficiency, 1 thread \| ≥ 0\.9 \| 0\.950 \| \*\*pass\*\* \|/);
  assert.match(md, /\| 1\. Pipeline efficiency \| efficiency, 2 threads \| ≥ 0\.9 \| 0\.700 \| \*\*miss\*\* \|/);
  assert.match(md, /\| 1 \| 5\.12 \|/);
  assert.match(md, /\| 2 \| — \|/);
  assert.match(md, /Machine of the latest run: Test CPU, 2 cores/);
});

test('every catalog item appears; missing and not-yet ones say why', () => {
  const results = new Map<string, BenchResult>([
    ['ota', result({ bench: 'ota', item: 6, title: 'OTA fan-out', status: 'not-yet', reason: 'no rollout engine yet' })],
    ['fleet-load', result({ bench: 'fleet-load', item: 5, title: 'Fleet load', status: 'failed', reason: 'broker refused' })],
    ['footprint', result({ bench: 'footprint', item: 7, title: 'Footprint', headline: 'idle 337 MiB' })],
  ]);
  const md = renderBenchmarks({ catalog: CATALOG, results });
  for (const e of CATALOG) assert.ok(md.includes(`## ${e.item}. ${e.title}`), `section for ${e.bench}`);
  assert.match(md, /\*\*not yet\*\*: no rollout engine yet/);
  assert.match(md, /\*\*failed\*\*: broker refused/);
  assert.match(md, /\| 2\. Tracker interval \| not yet \(no result\) \|/);
  assert.match(md, /\| 7\. Footprint \| no goal set in the issue \| — \| idle 337 MiB \| n\/a \|/);
});

test('an external section (quantize) replaces the generic one, without its own heading', () => {
  const md = renderBenchmarks({ catalog: CATALOG, results: new Map(), external: new Map([['quantize', { markdown: '## INT8 quantization\n\n| a |\n|---|\n| 1 |\n', createdAt: '2026-11-25' }]]) });
  const section = md.slice(md.indexOf('## 4. Precision'));
  assert.match(section, /^## 4\. Precision[^\n]*\n\n\| a \|/);
  assert.doesNotMatch(md, /## INT8 quantization/);
});

test('cells: numbers by magnitude, pipes escaped, booleans and nulls', () => {
  assert.equal(formatCell(1234.56), '1235');
  assert.equal(formatCell(12.345), '12.3');
  assert.equal(formatCell(0.12345), '0.123');
  assert.equal(formatCell(7), '7');
  assert.equal(formatCell(Number.NaN), '—');
  assert.equal(formatCell(true), 'yes');
  assert.equal(formatCell('a|b'), 'a\\|b');
  assert.equal(renderTable({ caption: 'c', columns: ['x'], rows: [['y']] }), '*c*\n\n| x |\n|---|\n| y |');
});
