/**
 * `sudo fleetctl model publish DIR --data-dir /var/lib/edge-fleet [--create]` gave only the database
 * back to the server's user (10ac809): artifacts/, artifacts/.staging, the artifact's directories and
 * a new signing key stayed root's, and an artifact copied from a 0600 model was a 0600 root file the
 * server could not read (devices got E_READ until the wave timed out); a root-made keys/ (0700) hid
 * the key from the server. Now, as root, what publish and key creation make belongs to the data dir's
 * owner, and the artifact is 0644 whatever the source's mode. Runs only as root (it must chown); the
 * service user is uid 65534 (nobody), and a child process running as that user reads the artifact,
 * loads the key and writes where the server writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { ModelRegistry } from '../../fleet-server/src/registry/model-registry.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';
import { loadOrCreateServerKey } from '../../fleet-server/src/keys/server-key.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { withTempDir } from '../helpers/temp-dir.js';

const SERVICE_UID = 65534;
const SERVICE_GID = 65534;
const skip = process.getuid?.() !== 0 ? 'needs root (it checks that files made as root are given to the service user)' : false;

/** Runs `script` (CommonJS) as the service user; its exit status and error. */
function asService(script: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', script], { uid: SERVICE_UID, gid: SERVICE_GID, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: r.stderr };
}

const ownerAndMode = (path: string) => {
  const st = statSync(path);
  return `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`;
};

test('as root, publish --create gives the artifact, its directories and the new key to the data dir\'s owner; the artifact is 0644', { skip, timeout: 20_000 }, async () => {
  await withTempDir('ef-publish-owner-', async (dataDir) => {
    chownSync(dataDir, SERVICE_UID, SERVICE_GID); // the server's data dir, before its first start
    await withTempDir('ef-publish-src-', async (src) => {
      const modelDir = writeStandIn(join(src, 'det-1.0.0'), { name: 'det', version: '1.0.0' });
      chmodSync(join(modelDir, 'model.onnx'), 0o600); // an operator's private build

      const key = loadOrCreateServerKey(dataDir, { create: true });
      const db = openDatabase(join(dataDir, 'fleet.sqlite'));
      let artifact: string;
      try {
        const { record } = await publishModelDir(new ModelRegistry(db, dataDir), key.privateKey, { dir: modelDir });
        artifact = record.path;
      } finally {
        db.close();
      }

      const svc = `${SERVICE_UID}:${SERVICE_GID}`;
      assert.equal(ownerAndMode(artifact), `${svc} 644`);
      for (const d of ['artifacts', 'artifacts/.staging', 'artifacts/det', 'artifacts/det/1.0.0', 'artifacts/det/1.0.0/onnx-cpu']) {
        assert.equal(ownerAndMode(join(dataDir, d)).split(' ')[0], svc, d);
      }
      assert.equal(ownerAndMode(join(dataDir, 'keys')), `${svc} 700`);
      assert.equal(ownerAndMode(key.path), `${svc} 600`);

      // The server, as its own user: serves the artifact's bytes, loads the key, writes in its dirs.
      const r = asService(`
        const fs = require('node:fs'), crypto = require('node:crypto');
        if (fs.readFileSync(${JSON.stringify(artifact)}).length !== ${statSync(artifact).size}) throw new Error('short read');
        crypto.createPrivateKey(fs.readFileSync(${JSON.stringify(key.path)}, 'utf8'));
        for (const d of ['artifacts/.staging', 'artifacts/det/1.0.0/onnx-cpu', 'keys']) {
          const f = ${JSON.stringify(dataDir)} + '/' + d + '/probe';
          fs.writeFileSync(f, 'x'); fs.rmSync(f);
        }`);
      assert.equal(r.status, 0, r.stderr);
    });
  });
});
