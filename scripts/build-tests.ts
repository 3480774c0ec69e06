/**
 * The test run's transpiled tree (scripts/run-tests.ts): every TypeScript file of the checkout
 * compiled to JavaScript by esbuild, one file per file (no bundling), under `.test-build/` at the same
 * relative path, beside symlinks to everything else: the .ts sources themselves, every other file of
 * those folders (their folders are made), and at the top assets/, configs/, node_modules/, package.json and the rest. Each run
 * of scripts/run-tests.ts has its own tree (`.test-build/run-<pid>/`), so two runs at once do not
 * pull each other's files away.
 *
 * node --test then runs the test files without a loader. Through tsx each test process spent about
 * 1.3 s more CPU (its loader thread, the esbuild service it starts, a round trip per import), and
 * each inference worker registered tsx again (measured 2026-11-28 on 2 cores of an AVX2 EPYC: one
 * unit test file 2.3 CPU-s through tsx, 0.96 from this tree; npm test 886 → 661 s of tests, its CPU
 * 27.6 → 20.1 min). Paths a module builds from import.meta.url
 * land in the tree and find there what they name; a worker started from it is its `.js` sibling
 * (platform-adapters/worker-entry.ts); a command module is found with its dispatcher's extension.
 *
 * Usage: tsx scripts/build-tests.ts [--outdir .test-build/manual]
 */
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';

/** The folders whose TypeScript runs in the tests (sources, tests, scripts and benchmarks). */
const SOURCE_DIRS = ['agent', 'fleet-server', 'platform-adapters', 'test', 'scripts', 'bench'];

const isTs = (name: string): boolean => name.endsWith('.ts') && !name.endsWith('.d.ts');

/** Where trees go: `<root>/.test-build/<name>/` (test/helpers/repo.ts finds the checkout by this name). */
export const TREES_DIR = '.test-build';

/** Builds the tree in `outdir`, a folder under `<root>/.test-build/`, emptied first. */
export async function buildTestTree(opts: { root: string; outdir: string }): Promise<{ compiled: number }> {
  const root = resolve(opts.root);
  const outdir = resolve(opts.outdir);
  const inTrees = relative(join(root, TREES_DIR), outdir);
  if (!inTrees || inTrees.startsWith('..') || isAbsolute(inTrees)) throw new Error(`Expected the tree's folder under ${join(root, TREES_DIR)} (it is emptied first) but received ${outdir}`);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const entryPoints: string[] = [];
  const mirror = (rel: string): void => {
    mkdirSync(join(outdir, rel), { recursive: true });
    for (const name of readdirSync(join(root, rel))) {
      const src = join(root, rel, name);
      if (statSync(src).isDirectory()) { mirror(join(rel, name)); continue; }
      symlinkSync(src, join(outdir, rel, name));
      if (isTs(name)) entryPoints.push(src);
    }
  };
  for (const name of readdirSync(root)) {
    if (name === '.git' || name === TREES_DIR) continue;
    if (SOURCE_DIRS.includes(name) && statSync(join(root, name)).isDirectory()) mirror(name);
    else symlinkSync(join(root, name), join(outdir, name));
  }
  await build({
    entryPoints,
    outdir,
    outbase: root,
    absWorkingDir: root,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Inline maps (sources not copied in): with --enable-source-maps a failure's stack names the .ts line.
    sourcemap: 'inline',
    sourcesContent: false,
    logLevel: 'warning',
  });
  return { compiled: entryPoints.length };
}

/**
 * Removes the trees of runs that have ended (scripts/run-tests.ts names each `run-<pid>` and removes
 * its own when it ends; one killed before that leaves its tree behind).
 */
export function removeEndedRuns(root: string): void {
  const dir = join(root, TREES_DIR);
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const pid = /^run-(\d+)$/.exec(name)?.[1];
    if (!pid) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}

if (process.argv[1] && basename(process.argv[1]) === 'build-tests.ts') {
  const at = process.argv.indexOf('--outdir');
  if (!existsSync('package.json')) throw new Error('run from the checkout root');
  const outdir = resolve(at > 0 && process.argv[at + 1] ? process.argv[at + 1] : join(TREES_DIR, 'manual'));
  const { compiled } = await buildTestTree({ root: process.cwd(), outdir });
  process.stdout.write(`${compiled} files compiled into ${relative(process.cwd(), outdir) || '.'}\n`);
}
