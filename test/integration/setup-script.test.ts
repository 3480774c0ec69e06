/**
 * scripts/setup.sh and its helpers as a developer meets them: no network, a distribution's old Node,
 * and a second run that has nothing to do (it must not load the model converter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importerVersion } from '../../scripts/prepare-models.js';
import { TFJS_IMPORTER_VERSION } from '../../fleet-server/src/convert/tfjs/convert.js';
import { REPO as ROOT } from '../helpers/repo.js';


test('no network: fetching a sample asset ends in one [setup] line naming the asset and the cause, not a stack trace', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-setup-offline-'));
  try {
    mkdirSync(join(dir, 'configs'));
    writeFileSync(join(dir, 'configs/assets.json'), JSON.stringify({
      npm: [{ package: '@vladmandic/face-api', version: '1.7.15', files: { 'demo/sample1.jpg': 'images/faces/sample1.jpg', 'demo/sample2.jpg': 'images/faces/sample2.jpg' } }],
      deb: [],
    }));
    // Port 9 (discard) refuses; an empty npm cache so nothing is served from it; no retries.
    const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_cache: join(dir, 'npm-cache'), npm_config_fetch_retries: '0' };
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/fetch-assets.mjs')], { cwd: dir, env, encoding: 'utf8', timeout: 50_000 });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1), ['[setup] fetching @vladmandic/face-api@1.7.15 from npm'], r.stderr);
    assert.match(lines.at(-1)!, /^\[setup\] could not fetch @vladmandic\/face-api@1\.7\.15 from npm \(for images\/faces\/sample1\.jpg, images\/faces\/sample2\.jpg\): .*ECONNREFUSED 127\.0\.0\.1:9\. Check the network .*full output in assets\/\.cache\/fetch-\S+\.log$/);
    const log = readdirSync(join(dir, 'assets/.cache')).find((f) => f.startsWith('fetch-'))!;
    assert.match(readFileSync(join(dir, 'assets/.cache', log), 'utf8'), /^\$ npm pack @vladmandic\/face-api@1\.7\.15/);

    // apt-get download without a network (a stand-in apt-get that says what apt says).
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin/apt-get'), '#!/bin/sh\necho "E: Failed to fetch http://deb.debian.org/debian/pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb  Temporary failure resolving \'deb.debian.org\'" >&2\nexit 100\n');
    chmodSync(join(dir, 'bin/apt-get'), 0o755);
    writeFileSync(join(dir, 'configs/assets.json'), JSON.stringify({ npm: [], deb: [{ package: 'opencv-doc', files: { 'usr/share/doc/opencv-doc/examples/data/vtest.avi': 'video/vtest.avi' } }] }));
    const d = spawnSync(process.execPath, [join(ROOT, 'scripts/fetch-assets.mjs')], { cwd: dir, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(d.status, 1, d.stderr);
    assert.deepEqual(d.stderr.trim().split('\n').length, 2, d.stderr);
    assert.match(d.stderr, /\[setup\] could not fetch Debian package opencv-doc \(for video\/vtest\.avi\): Failed to fetch .*Temporary failure resolving 'deb\.debian\.org'\. Check the network \(and apt's sources/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('setup.sh on a Node older than package.json needs (Debian 12\'s nodejs 18) stops first, with the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-setup-node-'));
  try {
    // A node 18 stand-in: the real node with process.versions.node reading 18.19.0.
    writeFileSync(join(dir, 'node'), `#!/bin/sh
case "$1" in
  -v|--version) echo v18.19.0 ;;
  -e) s="$2"; shift 2; exec ${process.execPath} -e "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.19.0' } }); $s" "$@" ;;
  *) echo "node 18 stand-in: unexpected $*" >&2; exit 99 ;;
esac
`);
    chmodSync(join(dir, 'node'), 0o755);
    // Runs the checkout's setup.sh: without apt, and the stand-in refuses anything but the version check, so
    // even a setup.sh that went on could not reinstall this checkout's packages.
    const r = spawnSync('bash', [join(ROOT, 'scripts/setup.sh')], { env: { ...process.env, EF_SETUP_SKIP_APT: '1', PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    const want = /"node": *">= *([0-9.]+)"/.exec(readFileSync(join(ROOT, 'package.json'), 'utf8'))![1];
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `[setup] node v18.19.0 is too old; Edge Fleet needs >= ${want} (package.json engines): install Node.js ${want.split('.')[0]} from NodeSource (https://github.com/nodesource/distributions: curl -fsSL https://deb.nodesource.com/setup_${want.split('.')[0]}.x | sudo -E bash - && sudo apt-get install -y nodejs), then run ./scripts/setup.sh again`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prepare-models with nothing to do does not load the converter (most of a second run of setup.sh)', { timeout: 60_000 }, async () => {
  assert.equal(await importerVersion(), TFJS_IMPORTER_VERSION, 'the version read from the source is the module\'s');
  const dir = mkdtempSync(join(tmpdir(), 'ef-prepare-'));
  try {
    mkdirSync(join(dir, 'configs/models'), { recursive: true });
    for (const f of readdirSync(join(ROOT, 'configs/models')).filter((x) => x.endsWith('.meta.json'))) copyFileSync(join(ROOT, 'configs/models', f), join(dir, 'configs/models', f));
    const model = join(dir, 'assets/models/coco-centernet');
    mkdirSync(model, { recursive: true });
    writeFileSync(join(model, 'model.onnx'), 'stand-in');
    writeFileSync(join(model, 'import.stamp'), `tfjs-importer ${TFJS_IMPORTER_VERSION} assets/tfjs/centernet/model.json`);
    // Records every module resolved under fleet-server/src/convert/.
    const loaded = join(dir, 'loaded.txt');
    writeFileSync(loaded, '');
    writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.includes('/fleet-server/src/convert/')) appendFileSync(${JSON.stringify(loaded)}, r.url + '\\n');
  return r;
}
`);
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
    const run = () => spawnSync(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, '--import', join(dir, 'register.mjs'), join(ROOT, 'scripts/prepare-models.ts')], { cwd: dir, encoding: 'utf8', timeout: 50_000 });
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(loaded, 'utf8'), '', 'no converter module loaded');
    assert.ok(existsSync(join(model, 'model.meta.json')), 'the metadata file is still put in place');
    // The hook sees the converter when there is something to import (here: the TF.js source is absent, so it says so instead).
    writeFileSync(join(model, 'import.stamp'), 'tfjs-importer 0 old');
    const stale = run();
    assert.equal(stale.status, 0, stale.stderr);
    assert.match(stale.stderr, /assets\/tfjs\/centernet\/model\.json is missing; skipping coco-centernet/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
