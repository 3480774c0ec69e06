/**
 * A plain uninstall kept the installer's node.conf drop-in, which belongs to the unit (it names the
 * node ExecStart= runs), not to the operator. Real scripts in a private mount namespace
 * (test/helpers/install-sandbox.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inSandbox, makeRelease } from '../helpers/install-sandbox.js';
import { REPO } from '../helpers/repo.js';


// As in install-agent.test.ts: apt's Node 12 in /usr/bin, Node 20 in /usr/local/bin, so the installer writes node.conf.
const OLD_USR_BIN_NODE = (sbDir: string) => `
printf '#!/bin/sh\\ncase "$1" in -v|--version) echo v12.22.9; exit 0;; esac\\necho "(node 12) SyntaxError: Unexpected token" >&2; exit 1\\n' > ${sbDir}/oldnode
chmod +x ${sbDir}/oldnode
touch /usr/local/bin/node && mount --bind ${process.execPath} /usr/local/bin/node
mount --bind ${sbDir}/oldnode /usr/bin/node
`;

test('uninstall without --purge removes the installer\'s node.conf drop-in and keeps the operator\'s own and the config', { timeout: 60_000 }, (t) => {
  inSandbox(t, (sb) => {
    const v1 = makeRelease(sb.dir, '0.1.0');
    const uninstall = join(v1, 'scripts/uninstall-agent.sh');
    copyFileSync(join(REPO, 'scripts/uninstall-agent.sh'), uninstall);
    const dropIns = join(sb.dir, 'etc-upper/systemd/system/edge-agent.service.d');
    const installed = sb.run(`${OLD_USR_BIN_NODE(sb.dir)}
mkdir -p /etc/edge-agent && echo '{ "deviceId": "cam-01", "cameras": [] }' > /etc/edge-agent/agent.json
${v1}/scripts/install-agent.sh
echo '[Service]' > /etc/systemd/system/edge-agent.service.d/override.conf`);
    assert.equal(installed.status, 0, installed.output);
    assert.ok(existsSync(join(dropIns, 'node.conf')), 'the installer wrote node.conf');

    const removed = sb.run(`bash ${uninstall}`);
    assert.equal(removed.status, 0, removed.output);
    assert.ok(!existsSync(join(dropIns, 'node.conf')), 'node.conf went with the unit');
    assert.ok(existsSync(join(dropIns, 'override.conf')), 'the operator\'s drop-in is configuration: kept');
    assert.ok(existsSync(join(sb.dir, 'etc-upper/edge-agent/agent.json')), 'the config is kept');
    assert.ok(!existsSync(join(sb.dir, 'etc-upper/systemd/system/edge-agent.service')));

    // Without the operator's drop-in, the directory goes too.
    const again = sb.run(`${OLD_USR_BIN_NODE(sb.dir)}
rm /etc/systemd/system/edge-agent.service.d/override.conf
${v1}/scripts/install-agent.sh
bash ${uninstall}`);
    assert.equal(again.status, 0, again.output);
    assert.ok(!existsSync(dropIns), again.output);
  });
});
