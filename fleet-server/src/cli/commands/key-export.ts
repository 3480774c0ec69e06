import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { loadFleetConfig } from '../../config/schema.js';
import { loadOrCreateServerKey } from '../../keys/server-key.js';

export const command: CliCommand = {
  summary: "print the fleet server's Ed25519 public key (PEM) that agents pin to verify model manifests",
  usage: `usage: fleetctl key export [--config FILE | --data-dir DIR] [--out FILE] [--json]

The key pair lives in <dataDir>/keys/signing-key.pem (mode 0600), created on the server's first
start. Copy the public key to every agent (the key its OtaManager pins); agents refuse manifests
that do not verify against it. The private key never leaves the server: back it up, because a new
key makes every agent refuse new models until they pin the new public key.`,
  async run(argv) {
    const v = parseArgs({ args: argv, options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } }).values;
    const config = loadFleetConfig(v.config);
    if (v['data-dir']) config.dataDir = v['data-dir'];
    const key = loadOrCreateServerKey(config.dataDir, { create: false });
    if (v.out) writeFileSync(v.out, key.publicKeyPem, { mode: 0o644 });
    if (v.json) process.stdout.write(`${JSON.stringify({ ok: true, publicKeyPem: key.publicKeyPem, created: key.created, ...(v.out ? { out: v.out } : {}) })}\n`);
    else process.stdout.write(v.out ? `wrote ${v.out}\n` : key.publicKeyPem);
    return 0;
  },
};
