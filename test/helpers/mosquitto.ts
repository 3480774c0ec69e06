/**
 * Debian's mosquitto for tests, standing in for an external broker: a private instance on 127.0.0.1
 * (password file, ACL file, persistence in a temp dir) on a port that was free a moment ago
 * (mosquitto cannot bind port 0). It is the fleet server's own ManagedMosquitto (same generated
 * config, same readiness rule) started by the test instead of by a fleet server. `stop()` ends it
 * with SIGTERM (it saves its persistence file), `start()` brings it back on the same port with its
 * sessions and queued messages.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './wait.js';
import { DEFAULT_MOSQUITTO_PATH, ManagedMosquitto, managedMosquittoFiles, type ManagedMosquittoFiles } from '../../fleet-server/src/broker/managed-mosquitto.js';

export const MOSQUITTO_BIN = process.env.EF_MOSQUITTO ?? DEFAULT_MOSQUITTO_PATH;

export function mosquittoAvailable(): boolean {
  return existsSync(MOSQUITTO_BIN);
}

export class TestMosquitto {
  port = 0;
  /** Under `<dir>/external/`, apart from where a fleet server on the same data dir keeps its own. */
  readonly files: ManagedMosquittoFiles;
  private broker: ManagedMosquitto | undefined;

  constructor(opts: { dir: string }) {
    this.files = managedMosquittoFiles(join(opts.dir, 'external'));
    // The fleet server may write the password file before the broker first starts.
    mkdirSync(this.files.dir, { recursive: true, mode: 0o700 });
  }

  get passwordFile(): string { return this.files.passwordFile; }
  get aclFile(): string { return this.files.aclFile; }
  get pidFile(): string { return this.files.pidFile; }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.broker?.pid;
  }

  async start(): Promise<void> {
    if (this.broker?.running) return;
    if (this.port === 0) this.port = await freePort();
    // mosquitto refuses to start without its password and ACL files; the fleet server fills them.
    for (const f of [this.passwordFile, this.aclFile]) if (!existsSync(f)) writeFileSync(f, '', { mode: 0o600 });
    this.broker ??= new ManagedMosquitto({ host: '127.0.0.1', port: this.port, files: this.files, binary: MOSQUITTO_BIN, bindClientIds: false });
    await this.broker.start();
  }

  async stop(): Promise<void> {
    await this.broker?.stop();
  }
}
