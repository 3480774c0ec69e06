/** `systemd-analyze verify` (Debian's systemd) accepts both units, and the test can see a broken one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO as ROOT } from '../helpers/repo.js';

const UNITS = ['edge-agent.service', 'fleet-server.service'];

function verify(file: string): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  // verify exits 0 on unknown keys and bad values (it only warns), so its output is the verdict.
  const output = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(file)).join('\n');
  return { status: r.status, output };
}

test('systemd-analyze verify accepts edge-agent.service and fleet-server.service', (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
    t.skip('systemd-analyze missing: apt-get install systemd (scripts/setup.sh APT_PACKAGES)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-units-'));
  try {
    for (const unit of UNITS) {
      const file = join(dir, unit);
      copyFileSync(join(ROOT, 'configs/systemd', unit), file);
      const r = verify(file);
      assert.equal(r.status, 0);
      assert.equal(r.output, '', `${unit}: ${r.output}`);
      const text = readFileSync(file, 'utf8');
      for (const key of ['Type=notify', 'WatchdogSec=', 'Restart=on-failure', 'StartLimitBurst=5', 'StartLimitIntervalSec=60', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) {
        assert.ok(text.includes(key), `${unit} has ${key}`);
      }
      // systemd will not start a unit whose credential file is missing: each one must be one the code reads.
      for (const [, name] of text.matchAll(/^LoadCredential=([^:\n]+):/gm)) {
        const readers = spawnSync('grep', ['-rlE', `CREDENTIALS_DIRECTORY.*'${name}'`, join(ROOT, 'agent/src'), join(ROOT, 'fleet-server/src')], { encoding: 'utf8' }).stdout;
        assert.ok(readers.trim(), `${unit}: LoadCredential=${name} but no code reads $CREDENTIALS_DIRECTORY/${name}`);
      }
    }
    const agent = readFileSync(join(ROOT, 'configs/systemd/edge-agent.service'), 'utf8');
    assert.match(agent, /^ReadWritePaths=\/var\/lib\/edge-agent$/m);
    assert.match(agent, /^SupplementaryGroups=video/m);
    assert.match(agent, /^LoadCredential=device-secret:\/etc\/edge-agent\/credentials\/device-secret$/m);
    // The check must be able to fail: a misspelt key and a bad Type= are reported.
    const broken = join(dir, 'broken.service');
    writeFileSync(broken, agent.replace(/^Type=notify$/m, 'Type=notifyy').replace('NoNewPrivileges=yes', 'NoNewPrivilegez=yes'));
    const b = verify(broken);
    assert.match(b.output, /notifyy/);
    assert.match(b.output, /NoNewPrivilegez/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
