/**
 * scripts/install-agent.sh run for real (root, systemctl stubbed) in a private mount namespace:
 * what an operator, or a script pushing to a fleet of boxes, sees on upgrades and first installs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { inSandbox, makeRelease, withSandbox } from '../helpers/install-sandbox.js';

const SECRET_AND_CONFIG = (config: string) => `
mkdir -p /etc/edge-agent/credentials
printf 's3cret\\n' > /etc/edge-agent/credentials/device-secret
cat > /etc/edge-agent/agent.json <<'J'
${config}
J
`;

test('an upgrade whose release refuses the running config changes nothing and fails: current stays on the old release, no restart', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0');
    // 0.2.0 renamed the board preset this box's config names.
    const v2 = makeRelease(sb.dir, '0.2.0', { refuses: 'generic-x86' });
    const first = sb.run(`${SECRET_AND_CONFIG('{ "deviceId": "cam-01", "board": "generic-x86", "cameras": [] }')}\n${v1}/scripts/install-agent.sh`);
    assert.equal(first.status, 0, first.output);
    assert.ok(first.systemctl.includes('restart edge-agent.service'), first.output);
    assert.equal(readlinkSync(join(sb.dir, 'opt/edge-agent/current')), 'releases/0.1.0');

    const up = sb.run(`${v2}/scripts/install-agent.sh`);
    assert.notEqual(up.status, 0, `the installer must fail: ${up.output}`);
    assert.match(up.output, /"generic-x86" is not known to 0\.2\.0/, 'the reason, from the new release');
    assert.match(up.output, /edge-agent 0\.2\.0 refuses \/etc\/edge-agent\/agent\.json .*nothing changed, the previous release still runs \(current -> releases\/0\.1\.0\)/);
    assert.equal(readlinkSync(join(sb.dir, 'opt/edge-agent/current')), 'releases/0.1.0', 'the next restart still runs 0.1.0');
    assert.ok(!up.systemctl.some((c) => c.startsWith('restart')), `no restart: ${up.systemctl.join('; ')}`);
    assert.deepEqual(readFileSync(join(sb.dir, 'opt/edge-agent/releases/0.1.0/VERSION'), 'utf8'), '0.1.0\n');

    // With the config fixed, the same upgrade goes through and restarts.
    const fixed = sb.run(`sed -i 's/generic-x86/x86-generic/' /etc/edge-agent/agent.json\n${v2}/scripts/install-agent.sh`);
    assert.equal(fixed.status, 0, fixed.output);
    assert.equal(readlinkSync(join(sb.dir, 'opt/edge-agent/current')), 'releases/0.2.0');
    assert.ok(fixed.systemctl.includes('restart edge-agent.service'));
    // --no-start does not skip the check: the swap alone decides what the next reboot runs.
    const v3 = makeRelease(sb.dir, '0.3.0', { refuses: 'x86-generic' });
    const noStart = sb.run(`${v3}/scripts/install-agent.sh --no-start`);
    assert.notEqual(noStart.status, 0, noStart.output);
    assert.equal(readlinkSync(join(sb.dir, 'opt/edge-agent/current')), 'releases/0.2.0');
  });
});

test('a first install onto a config placed beforehand that the release refuses: installed, not started, and a failing exit code', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0', { refuses: 'generic-x86' });
    const r = sb.run(`${SECRET_AND_CONFIG('{ "deviceId": "cam-01", "board": "generic-x86", "cameras": [] }')}\n${v1}/scripts/install-agent.sh`);
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /installed edge-agent 0\.1\.0, but it refuses \/etc\/edge-agent\/agent\.json/);
    assert.ok(!r.systemctl.some((c) => c.startsWith('restart')), r.systemctl.join('; '));
    assert.equal(readlinkSync(join(sb.dir, 'opt/edge-agent/current')), 'releases/0.1.0');
    // A first install that writes the example config is the normal case: it says to edit it, exit 0.
    withSandbox((fresh) => {
      const v = makeRelease(fresh.dir, '0.1.0', { refuses: 'demo-01' });
      const f = fresh.run(`${v}/scripts/install-agent.sh`);
      assert.equal(f.status, 0, f.output);
      assert.match(f.output, /wrote \/etc\/edge-agent\/agent\.json from the example/);
    });
  });
});

test('a stand-alone box (no link in agent.json) starts without a device secret; a joined one is not started without it', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0');
    const standAlone = sb.run(`mkdir -p /etc/edge-agent\necho '{ "deviceId": "cam-01", "cameras": [] }' > /etc/edge-agent/agent.json\n${v1}/scripts/install-agent.sh`);
    assert.equal(standAlone.status, 0, standAlone.output);
    assert.ok(standAlone.systemctl.includes('restart edge-agent.service'), `started: ${standAlone.output}`);
    assert.doesNotMatch(standAlone.output, /not starting/);

    const joined = sb.run(`echo '{ "deviceId": "cam-01", "cameras": [], "link": { "url": "mqtts://fleet:8883" } }' > /etc/edge-agent/agent.json\n${v1}/scripts/install-agent.sh`);
    assert.equal(joined.status, 0, joined.output);
    assert.ok(!joined.systemctl.some((c) => c.startsWith('restart')), joined.systemctl.join('; '));
    assert.match(joined.output, /not starting: agent\.json has a link but there is no device secret yet/);
  });
});

test('the unit starts without the secret file: SetCredential= is the fallback for LoadCredential=device-secret', () => {
  // systemd.exec(5): with LoadCredential= and SetCredential= for the same ID, the latter is used
  // when the file cannot be read, instead of failing the start with 243/CREDENTIALS.
  const unit = readFileSync('configs/systemd/edge-agent.service', 'utf8');
  const loads = [...unit.matchAll(/^LoadCredential=([^:\n]+):/gm)].map((m) => m[1]);
  assert.deepEqual(loads, ['device-secret']);
  assert.match(unit, /^SetCredential=device-secret:\\n$/m, 'a blank fallback, which the agent reads as no secret');
});

// JetPack 6 / Ubuntu 22.04: apt's Node 12 in /usr/bin, Node 20 (a tarball, n) in /usr/local/bin.
const OLD_USR_BIN_NODE = (sbDir: string, opts: { node20InLocal: boolean }) => `
printf '#!/bin/sh\\ncase "$1" in -v|--version) echo v12.22.9; exit 0;; esac\\necho "(node 12) SyntaxError: Unexpected token" >&2; exit 1\\n' > ${sbDir}/oldnode
chmod +x ${sbDir}/oldnode
${opts.node20InLocal ? `touch /usr/local/bin/node && mount --bind ${process.execPath} /usr/local/bin/node` : ''}
mount --bind ${sbDir}/oldnode /usr/bin/node
`;

test('with an old /usr/bin/node and Node 20 in /usr/local/bin, the unit is pointed at Node 20 (drop-in), which also runs check-config; with no Node 20 at all nothing is installed', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0');
    const r = sb.run(`${OLD_USR_BIN_NODE(sb.dir, { node20InLocal: true })}${SECRET_AND_CONFIG('{ "deviceId": "cam-01", "cameras": [] }')}\n${v1}/scripts/install-agent.sh`);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, new RegExp(`stub check-config 0\\.1\\.0 on node ${process.version.replace(/\./g, '\\.')}`), 'check-config ran on the node the unit runs');
    const dropIn = readFileSync(join(sb.dir, 'etc-upper/systemd/system/edge-agent.service.d/node.conf'), 'utf8');
    const unitExec = readFileSync(join(sb.dir, 'etc-upper/systemd/system/edge-agent.service'), 'utf8').match(/^ExecStart=\/usr\/bin\/node (.*)$/m)![1];
    assert.match(dropIn, /^\[Service\]\nExecStart=\n/m);
    assert.ok(dropIn.includes(`\nExecStart=/usr/local/bin/node ${unitExec}\n`), dropIn);
    assert.match(r.output, /\/usr\/bin\/node is v12\.22\.9: the unit runs \/usr\/local\/bin\/node/);
    assert.ok(r.systemctl.includes('daemon-reload') && r.systemctl.includes('restart edge-agent.service'));

    // Once /usr/bin/node is new enough, a re-run removes the drop-in (the operator's own are kept).
    const again = sb.run(`mkdir -p /etc/systemd/system/edge-agent.service.d && echo '[Service]' > /etc/systemd/system/edge-agent.service.d/override.conf\n${v1}/scripts/install-agent.sh`);
    assert.equal(again.status, 0, again.output);
    assert.ok(!existsSync(join(sb.dir, 'etc-upper/systemd/system/edge-agent.service.d/node.conf')), again.output);
    assert.ok(existsSync(join(sb.dir, 'etc-upper/systemd/system/edge-agent.service.d/override.conf')));

    // Only the old node: refused before anything is installed.
    withSandbox((none) => {
      const v = makeRelease(none.dir, '0.1.0');
      const n = none.run(`${OLD_USR_BIN_NODE(none.dir, { node20InLocal: false })}\n${v}/scripts/install-agent.sh`);
      assert.notEqual(n.status, 0, n.output);
      assert.match(n.output, /the agent needs Node\.js >= 20\.19, but \/usr\/bin\/node \(which the unit runs\) is v12\.22\.9/);
      assert.ok(!existsSync(join(none.dir, 'opt/edge-agent')), 'nothing installed');
    });
  });
});
