/**
 * Runs scripts/install-agent.sh for real (useradd, chown, systemctl) without touching this machine:
 * a private mount namespace (unshare -m) where /etc is an overlay whose writes land in a temporary
 * directory, /opt, /var/lib and /usr/local/bin are empty directories of it, /run a tmpfs, and
 * systemctl a stub that logs its arguments. Needs root and unshare; `sandboxUnavailable()` says why not otherwise.
 *
 * The release is a small stand-in with the real installer and unit: its dist/edge-agent.mjs answers
 * `check-config` by refusing a config that contains the text in the release's dist/refuses.txt, and says
 * which Node ran it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { REPO as ROOT } from './repo.js';


export function sandboxUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (the installer creates a user and writes /etc, /opt, /var/lib inside a private mount namespace)';
  if (spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status !== 0) return 'needs unshare -m (a private mount namespace)';
  return undefined;
}

const STUB_AGENT = `import { readFileSync } from 'node:fs';
const [cmd, file] = process.argv.slice(2);
const version = readFileSync(new URL('../VERSION', import.meta.url), 'utf8').trim();
if (cmd === 'check-config') {
  const refuses = readFileSync(new URL('./refuses.txt', import.meta.url), 'utf8').trim();
  const text = readFileSync(file, 'utf8');
  process.stderr.write(\`stub check-config \${version} on node \${process.version}\\n\`);
  if (refuses && text.includes(refuses)) { process.stderr.write(\`check-config: \${file}: "\${refuses}" is not known to \${version}\\n\`); process.exit(1); }
  process.stdout.write(\`\${file}: ok\\n\`);
  process.exit(0);
}
process.stdout.write(\`edge-agent \${version}\\n\`);
`;

/** A release directory for `version` whose check-config refuses configs containing `refuses`. */
export function makeRelease(dir: string, version: string, opts: { refuses?: string } = {}): string {
  const rel = join(dir, `edge-agent-${version}`);
  for (const d of ['dist', 'bin', 'configs/systemd', 'configs/boards', 'scripts']) mkdirSync(join(rel, d), { recursive: true });
  writeFileSync(join(rel, 'VERSION'), `${version}\n`);
  writeFileSync(join(rel, 'ARCH'), `linux-${process.arch}\n`);
  writeFileSync(join(rel, 'NEEDS_REBUILD'), '');
  writeFileSync(join(rel, 'dist/refuses.txt'), opts.refuses ?? '');
  writeFileSync(join(rel, 'dist/edge-agent.mjs'), STUB_AGENT);
  // As the release's wrapper: node from PATH.
  writeFileSync(join(rel, 'bin/edge-agent'), '#!/bin/sh\nhere="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"\nexec node "$here/dist/edge-agent.mjs" "$@"\n');
  chmodSync(join(rel, 'bin/edge-agent'), 0o755);
  writeFileSync(join(rel, 'configs/agent.example.json'), '{ "deviceId": "demo-01", "stateDir": "../.state/agent", "cameras": [] }\n');
  copyFileSync(join(ROOT, 'configs/systemd/edge-agent.service'), join(rel, 'configs/systemd/edge-agent.service'));
  copyFileSync(join(ROOT, 'scripts/install-agent.sh'), join(rel, 'scripts/install-agent.sh'));
  chmodSync(join(rel, 'scripts/install-agent.sh'), 0o755);
  return rel;
}

export interface SandboxRun {
  status: number | null;
  /** stdout and stderr of the script, interleaved. */
  output: string;
  /** Each systemctl call, as its arguments. */
  systemctl: string[];
}

export class InstallSandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'ef-install-'));

  /**
   * Runs `script` (bash, `set -e`) in the namespace, with `$SB` this sandbox's directory. What the
   * installer writes to /etc, /opt, /var/lib and /usr/local/bin lands in SB, so a second run (an
   * upgrade) sees what the first left there; /run is fresh each time.
   */
  run(script: string): SandboxRun {
    const sb = this.dir;
    for (const d of ['etc-upper', 'etc-work', 'stub', 'opt', 'varlib', 'localbin']) mkdirSync(join(sb, d), { recursive: true });
    writeFileSync(join(sb, 'stub/systemctl'), `#!/bin/sh\necho "$*" >> ${sb}/systemctl.log\n[ "$1" = --version ] && echo "systemd \${SD_VER:-252} (stub)"\nexit 0\n`);
    chmodSync(join(sb, 'stub/systemctl'), 0o755);
    writeFileSync(join(sb, 'systemctl.log'), '');
    const prelude = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${sb}/etc-upper,workdir=${sb}/etc-work /etc`,
      `mount --bind ${sb}/opt /opt`,
      `mount --bind ${sb}/varlib /var/lib`,
      `mount --bind ${sb}/localbin /usr/local/bin`,
      'mount -t tmpfs t /run',
      'mkdir -p /run/systemd/system',
      `export SB=${sb} PATH=${sb}/stub:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', `${prelude}\n${script}`], { encoding: 'utf8', timeout: 60_000 });
    const systemctl = readFileSync(join(sb, 'systemctl.log'), 'utf8').split('\n').filter(Boolean);
    return { status: r.status, output: `${r.stdout}${r.stderr}`, systemctl };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with a new sandbox, removed afterwards whatever `fn` does. */
export function withSandbox(fn: (sb: InstallSandbox) => void): void {
  const sb = new InstallSandbox();
  try {
    fn(sb);
  } finally {
    sb.remove();
  }
}

/** Runs `fn` with a new sandbox (see withSandbox), or skips the test `t` where no sandbox can be made here. */
export function inSandbox(t: TestContext, fn: (sb: InstallSandbox) => void): void {
  const unavailable = sandboxUnavailable();
  if (unavailable) { t.skip(unavailable); return; }
  withSandbox(fn);
}
