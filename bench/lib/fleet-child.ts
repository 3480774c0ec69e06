/** Parent side of bench/lib/fleet-server-child.ts: fork it, wait for ready, ask and answer over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import type { BrokerKind } from '../../test/helpers/fleet.js';
import type { ServerReply, ServerRequest } from './fleet-server-child.js';

export class FleetServerChild {
  private constructor(private readonly child: ChildProcess, readonly ready: Extract<ServerReply, { type: 'ready' }>) {}

  static async start(broker: BrokerKind, devices: number, timeoutMs = 120_000): Promise<FleetServerChild> {
    const child = fork('bench/lib/fleet-server-child.ts', [broker, String(devices)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = await next(child, 'ready', timeoutMs);
    return new FleetServerChild(child, ready);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  async ask<T extends ServerReply['type']>(req: ServerRequest, type: T, timeoutMs = 30_000): Promise<Extract<ServerReply, { type: T }>> {
    const p = next(this.child, type, timeoutMs);
    this.child.send(req);
    return p;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.ask({ cmd: 'stop' }, 'stopped', 30_000).catch(() => this.child.kill('SIGTERM'));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function next<T extends ServerReply['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<ServerReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`fleet server child: no "${type}" reply within ${timeoutMs} ms`)); }, timeoutMs);
    const onMsg = (m: ServerReply) => { if (m.type === type) { cleanup(); resolve(m as Extract<ServerReply, { type: T }>); } };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`fleet server child exited with ${code} while waiting for "${type}"`)); };
    const cleanup = () => { clearTimeout(timer); child.off('message', onMsg); child.off('exit', onExit); };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}
