/**
 * Runs every `test/**\/*.test.ts` with node:test, from a transpiled tree (below). Node 20's `--test` has no glob support,
 * so the files are listed here. Extra arguments filter files by substring (`npm run test:only -- tracker`).
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(process.cwd(), p));
  }
  return out;
}

/**
 * node --test starts a process for each file, and each paid its start and its imports (node, the
 * runner's child, a few hundred modules of the transpiled tree: ~0.3-0.7 CPU-s for a unit file, ~1.2
 * for an integration one, 2026-11-28 on 2 cores of an AVX2 EPYC), a large share of the ~140 unit files'
 * CPU. Files run here several to a process: a group is a file that imports each member inside a
 * suite named after it (`describe(FILE, () => import(FILE))`), so its tests run one after another as
 * they did within the file, its module-level hooks (before, after, beforeEach) apply to its own tests
 * and end with them, a member that throws while loading fails its own suite, and the shared modules
 * load once. A file that changes what the whole process shares (process handlers, the environment,
 * the clock, cwd, a patched onnxruntime) or measures the process (memory, CPU, event-loop delay) runs
 * alone. Unit tests alone: 170 s → 81 s of wall, 195 → 87 CPU-s; npm test 10:31 → 9:34.
 * EF_TEST_GROUPS=0 runs each file on its own (to find one that disturbs another).
 */
const FILES_PER_GROUP: Record<string, number> = { unit: 36, integration: 4, e2e: 4 };
const PROCESS_WIDE = new RegExp([
  /process\.(?:on|once|off|chdir|memoryUsage|cpuUsage|resourceUsage|getActiveResourcesInfo)\b/,
  /monitorEventLoopDelay|eventLoopUtilization/,
  /process\.env(?:\.\w+|\[[^\]]+\])\s*(?:\?\?|\|\||&&)?=(?!=)|delete process\.env|Object\.assign\(\s*process\.env/,
  /Date\.now\s*=(?!=)|mock\.method\(\s*Date\b|mock\.timers/,
  /InferenceSession\.create\s*=(?!=)/,
].map((r) => r.source).join('|'));

function groupTestFiles(sources: string[], runFiles: string[], runTree: string): string[] {
  if (process.env.EF_TEST_GROUPS === '0') return runFiles;
  const files = sources.map((src, i) => ({ src, run: runFiles[i], dir: dirname(src), size: FILES_PER_GROUP[basename(dirname(src))] }));
  const out: string[] = [];
  for (const dir of new Set(files.map((f) => f.dir))) {
    const inDir = files.filter((f) => f.dir === dir);
    const members = inDir.filter((f) => f.size && !PROCESS_WIDE.test(readFileSync(f.src, 'utf8')));
    if (members.length < 2) { out.push(...inDir.map((f) => f.run)); continue; }
    out.push(...inDir.filter((f) => !members.includes(f)).map((f) => f.run));
    const n = Math.ceil(members.length / members[0].size);
    for (let g = 0; g < n; g++) {
      // Every n-th file: a group takes a spread of the alphabet, not one family of slow files.
      const file = join(runTree, dir, `group-${g + 1}-of-${n}.test.js`);
      const suites = members.filter((_, k) => k % n === g).map((m) => `describe(${JSON.stringify(m.src)}, async () => { await import('./${basename(m.run)}'); });\n`);
      writeFileSync(file, `import { describe } from 'node:test';\n${suites.join('')}`);
      out.push(relative(process.cwd(), file));
    }
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk('test', []).sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(', ') || 'test/**/*.test.ts'}`);
  process.exit(1);
}
// The binaries the tests run (test/helpers/cli.ts binaryEntry) are bundled once for the run, as a
// release bundles them: started through tsx each cost 1.5-2.5 s of CPU. The test files themselves run
// from a transpiled tree (scripts/build-tests.ts, .test-build/), with no loader: through tsx each test
// process cost ~1.3 s more CPU. EF_TEST_SOURCES=1 runs both through tsx from the sources instead.
const fromSources = process.env.EF_TEST_SOURCES === '1';
const bundleEnv: Record<string, string> = {};
let runFiles = files;
let tree: string | undefined;
if (!fromSources) {
  const { buildAll } = await import('./build.js');
  const { buildTestTree, removeEndedRuns, TREES_DIR } = await import('./build-tests.js');
  const dist = join(process.cwd(), 'dist');
  await buildAll({ root: process.cwd(), outdir: dist });
  bundleEnv.EF_TEST_BUNDLES = dist;
  removeEndedRuns(process.cwd());
  const runTree = join(process.cwd(), TREES_DIR, `run-${process.pid}`);
  tree = runTree;
  await buildTestTree({ root: process.cwd(), outdir: runTree });
  runFiles = files.map((f) => join(relative(process.cwd(), runTree), f.replace(/\.ts$/, '.js')));
  runFiles = groupTestFiles(files, runFiles, runTree);
}
// One test file (a group of files, since they were grouped) more than there are cores (at most 3; more was not measured): the e2e and broker files spend much of their time
// waiting (an outage held for 12 s, a dashboard's debounce, a health window), which a third file fills.
// On 2 cores (AVX2 EPYC, 2026-11-28) the whole run took 569 s of test time with 3 files at a time
// against 618 s with 2, for about the same CPU time. Before the inference worker stopped spinning
// (session-options.ts) a third file only added contention: 668 s against 640 s.
const concurrency = process.env.EF_TEST_CONCURRENCY ?? String(Math.min(3, availableParallelism() + 1));
const child = spawn(process.execPath, [
  ...(fromSources ? ['--import', 'tsx'] : ['--enable-source-maps']),
  '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec',
  ...runFiles,
], { stdio: 'inherit', detached: true, env: { ...process.env, ...bundleEnv, NODE_ENV: 'test', UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' } });
// Its own process group, so that the test files node --test runs (and what they spawn) end with it.
const killGroup = (sig: NodeJS.Signals): void => {
  try { process.kill(-child.pid!, sig); } catch { /* already gone */ }
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => killGroup(sig));
// A test file that leaves a handle open after a failure (a worker thread, a GStreamer bus poll) keeps
// node --test waiting forever; CI must end with an error instead. The suite took 8.8 min on 2 cores
// of an AVX-512 EPYC and 18.3 min on an AVX2-only EPYC, whose CPU runs the CenterNet at half the
// speed (2026-11-26; 11 min there from the transpiled tree, 2026-11-28): the guard sits well above
// both, so that only a hang trips it.
const deadlineS = Number(process.env.EF_TEST_DEADLINE_S ?? 2700);
const deadline = setTimeout(() => {
  console.error(`\nrun-tests: the test run passed its ${deadlineS} s deadline (EF_TEST_DEADLINE_S); a test file is probably hanging on an open handle after a failure; stopping it.`);
  killGroup('SIGKILL');
}, deadlineS * 1000);
deadline.unref();
child.on('exit', (code, signal) => {
  if (tree) rmSync(tree, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
