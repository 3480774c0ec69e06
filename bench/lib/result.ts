/**
 * The shape of `bench/results/NAME.json` and its writer. One file per bench; `docs/benchmarks.md`
 * is rendered from these files only, so the docs never show a figure that no run produced.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './machine.js';

export const RESULTS_DIR = 'bench/results';

export type Cell = string | number | boolean | null;

export interface BenchTable {
  caption?: string;
  columns: string[];
  rows: Cell[][];
}

/** A goal from the issue and whether this run met it; `pass: null` when not measurable. */
export interface BenchGoal {
  name: string;
  target: string;
  value: number | string | null;
  pass: boolean | null;
}

export interface BenchResult {
  bench: string;
  /** Item number in project issue 12 (orders the docs). */
  item: number;
  title: string;
  /** measured: figures below; not-yet: the part it needs does not exist; failed: it ran and broke. */
  status: 'measured' | 'not-yet' | 'failed';
  reason?: string;
  createdAt: string;
  durationS?: number;
  machine: MachineInfo;
  /** How it was measured, one paragraph (rendered under the table heading). */
  method: string;
  goals: BenchGoal[];
  /** One line for the summary table when the issue sets no goal for this item. */
  headline?: string;
  tables: BenchTable[];
  /** Raw figures for anyone comparing runs. */
  figures: Record<string, unknown>;
  notes?: string[];
}

export function writeResult(result: BenchResult, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${result.bench}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

/** Every `*.json` in the results folder, parsed, keyed by file name without extension. */
export function readResults(dir = RESULTS_DIR): Map<string, unknown> {
  const out = new Map<string, unknown>();
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const n of names) out.set(n.slice(0, -5), JSON.parse(readFileSync(join(dir, n), 'utf8')) as unknown);
  return out;
}

export function notYet(opts: { bench: string; item: number; title: string; reason: string; machine: MachineInfo }): BenchResult {
  return {
    bench: opts.bench, item: opts.item, title: opts.title, status: 'not-yet', reason: opts.reason,
    createdAt: new Date().toISOString(), machine: opts.machine, method: '', goals: [], tables: [], figures: {},
  };
}
