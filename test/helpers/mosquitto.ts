/**
 * Debian's mosquitto for tests: a private instance on 127.0.0.1 with a generated config (password
 * file, ACL file, persistence in a temp dir) on a port that was free a moment ago (mosquitto cannot
 * bind port 0). `stop()` ends it with SIGTERM (it saves its persistence file), `start()` brings it
 * back on the same port with its sessions and queued messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, waitFor } from './wait.js';
import { catchesSighup } from '../../fleet-server/src/broker/managed-mosquitto.js';

export const MOSQUITTO_BIN = process.env.EF_MOSQUITTO ?? '/usr/sbin/mosquitto';

export function mosquittoAvailable(): boolean {
  return existsSync(MOSQUITTO_BIN);
}

export interface MosquittoOptions {
  dir: string;
  /** Files the fleet server writes (created empty when missing). */
  passwordFile?: string;
  aclFile?: string;
}

export class TestMosquitto {
  port = 0;
  readonly confFile: string;
  readonly passwordFile: string;
  readonly aclFile: string;
  readonly pidFile: string;
  private child: ChildProcess | undefined;
  stderr = '';

  constructor(private readonly opts: MosquittoOptions) {
    this.confFile = join(opts.dir, 'mosquitto.conf');
    this.passwordFile = opts.passwordFile ?? join(opts.dir, 'passwd');
    this.aclFile = opts.aclFile ?? join(opts.dir, 'acl');
    this.pidFile = join(opts.dir, 'mosquitto.pid');
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) return;
    if (this.port === 0) this.port = await freePort();
    for (const f of [this.passwordFile, this.aclFile]) if (!existsSync(f)) writeFileSync(f, '', { mode: 0o600 });
    writeFileSync(this.confFile, [
      `listener ${this.port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${this.passwordFile}`,
      `acl_file ${this.aclFile}`,
      'persistence true',
      `persistence_location ${this.opts.dir}/`,
      'autosave_interval 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      // Run as whoever started the test (root in CI containers would otherwise switch to 'mosquitto').
      `user ${process.env.USER ?? 'root'}`,
      'max_queued_messages 10000',
      '',
    ].join('\n'));
    const child = spawn(MOSQUITTO_BIN, ['-c', this.confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.child = child;
    writeFileSync(this.pidFile, `${child.pid}\n`);
    await waitFor(`mosquitto on port ${this.port} (stderr: ${this.stderr.slice(-300)})`, () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${this.stderr}`);
      return new Promise<boolean>((resolve) => {
        const s = connect(this.port, '127.0.0.1');
        // A listener alone could be someone else's (mosquitto exits at once when its bind fails), and
        // mosquitto listens before it catches SIGHUP: the fleet server's first reload would end it.
        s.once('connect', () => { s.destroy(); setTimeout(() => resolve(child.exitCode === null && catchesSighup(child.pid!)), 50); });
        s.once('error', () => resolve(false));
      });
    }, 10_000, 50);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
