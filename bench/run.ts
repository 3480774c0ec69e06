/**
 * `npm run bench`: runs the benches of project issue 12 one after the other, writes
 * bench/results/NAME.json for each and regenerates docs/benchmarks.md from every result file.
 *
 *   npm run bench                              all but quantize (≈ 10 min on 2 shared cores)
 *   npm run bench -- --only pipeline,tracker   some of them (the others keep their last results)
 *   npm run bench -- --quick                   small samples: checks the harness, not for publishing
 *   npm run bench -- --quantize                also item 4 (bench/quantize.ts, ≈ 8 min more; skipped by default)
 *   npm run bench -- --render                  only regenerate docs/benchmarks.md
 *
 * Benches never run inside `npm test`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { CATALOG } from './lib/catalog.js';
import { machineInfo } from './lib/machine.js';
import { readResults, writeResult, type BenchResult } from './lib/result.js';
import { renderBenchmarks } from './lib/render.js';
import type { BenchContext } from './lib/context.js';
import { describeError } from '../agent/src/util/errors.js';

const DOC = 'docs/benchmarks.md';

type BenchModule = { run(ctx: BenchContext): Promise<BenchResult> };

async function runQuantize(ctx: BenchContext): Promise<void> {
  // bench/quantize.ts (issue 8) owns its run and its result file; it is run as written.
  const args = ctx.quick ? ['--frames', '4', '--runs', '3'] : ['--runs', '5'];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/quantize.ts', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/quantize.ts exited with ${code}`))));
  });
}

export async function renderDoc(): Promise<string> {
  const all = readResults();
  const results = new Map<string, BenchResult>();
  const external = new Map<string, { markdown: string; createdAt: string }>();
  for (const [name, value] of all) {
    const v = value as Partial<BenchResult> & { models?: unknown };
    if (name === 'quantize' && Array.isArray(v.models)) {
      const q = await import('./quantize.js');
      external.set(name, { markdown: q.renderQuantizeTable(value as Parameters<typeof q.renderQuantizeTable>[0]), createdAt: String(v.createdAt) });
    } else if (typeof v.status === 'string') {
      results.set(name, value as BenchResult);
    }
  }
  const md = renderBenchmarks({ catalog: CATALOG, results, external });
  writeFileSync(DOC, md);
  return md;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, render: { type: 'boolean', default: false }, quantize: { type: 'boolean', default: false } } });
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of only ?? []) {
    if (!CATALOG.some((e) => e.bench === name)) throw new Error(`--only expects names from ${CATALOG.map((e) => e.bench).join(', ')}; got "${name}"`);
  }
  const machine = machineInfo();
  const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  const ctx: BenchContext = { machine, quick: values.quick, log };
  if (!values.render) {
    log(`machine: ${machine.cpu}, ${machine.cores} cores, load ${machine.load1AtStart}`);
    for (const e of CATALOG) {
      if (only && !only.includes(e.bench)) continue;
      const t0 = Date.now();
      log(`${e.bench}: start`);
      try {
        if (e.bench === 'quantize') {
          if (!only?.includes('quantize') && !values.quantize) {
            // Calibration + evaluation of every variant takes ~8 min on 2 shared cores: alone it would
            // break the 10-minute budget of a full run, so it runs when asked for by name.
            log('quantize: skipped (≈ 8 min; run with --only quantize or --quantize); docs keep bench/results/quantize.json');
            continue;
          }
          if (!existsSync('bench/quantize.ts')) {
            writeResult({ bench: 'quantize', item: e.item, title: e.title, status: 'not-yet', reason: 'bench/quantize.ts (issue 8) is not in this checkout', createdAt: new Date().toISOString(), machine, method: '', goals: [], tables: [], figures: {} });
          } else {
            await runQuantize(ctx);
          }
        } else {
          const mod = (await import(`./${e.bench}.ts`)) as BenchModule;
          writeResult(await mod.run({ ...ctx, machine: machineInfo() }));
        }
      } catch (err) {
        const d = describeError(err);
        log(`${e.bench}: failed: ${d.message}`);
        writeResult({ bench: e.bench, item: e.item, title: e.title, status: 'failed', reason: d.message.slice(0, 300), createdAt: new Date().toISOString(), machine, method: '', goals: [], tables: [], figures: {} });
      }
      log(`${e.bench}: done in ${Math.round((Date.now() - t0) / 1000)} s`);
    }
  }
  await renderDoc();
  log(`wrote ${DOC}`);
}

await main();
