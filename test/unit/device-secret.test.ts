/** Where the agent finds its device secret, and that the unit's blank SetCredential= fallback counts as none. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDeviceSecret } from '../../agent/src/pipeline/fleet-attachment.js';
import type { AgentConfig } from '../../agent/src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-secret-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = (secretFile?: string): AgentConfig => ({ deviceId: 'cam-01', link: { url: 'mqtts://fleet:8883', ...(secretFile ? { secretFile } : {}) } }) as unknown as AgentConfig;

test('the systemd credential comes first; a blank one (SetCredential=device-secret:\\n, no secret file on the box) counts as none', () => {
  const file = join(dir, 'secret-file');
  writeFileSync(file, 'from-file\n');
  const creds = mkdtempSync(join(dir, 'creds-'));
  writeFileSync(join(creds, 'device-secret'), 's3cret\n');
  assert.equal(readDeviceSecret(config(file), { CREDENTIALS_DIRECTORY: creds }), 's3cret');
  // The unit's fallback when /etc/edge-agent/credentials/device-secret is missing: a newline.
  // Then link.secretFile, then EF_DEVICE_SECRET.
  writeFileSync(join(creds, 'device-secret'), '\n');
  assert.equal(readDeviceSecret(config(file), { CREDENTIALS_DIRECTORY: creds }), 'from-file');
  assert.equal(readDeviceSecret(config(), { CREDENTIALS_DIRECTORY: creds, EF_DEVICE_SECRET: 'env' }), 'env');
  // Nothing else: the error that names where it looked, not a connection with an empty secret.
  assert.throws(() => readDeviceSecret(config(), { CREDENTIALS_DIRECTORY: creds }), /No device secret for cam-01: looked in .*device-secret/);
});
