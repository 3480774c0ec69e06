/**
 * A fake trtexec for the TensorRT adapter off Jetson: `--help` prints a TensorRT 8.6.2 banner, a build
 * writes a small engine file at --saveEngine. Every call is recorded so tests can check the command lines.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { writeFileSync } from 'node:fs';
import type { SpawnFn } from '../../platform-adapters/tensorrt/adapter.js';

export interface FakeTrtexec {
  spawn: SpawnFn;
  calls: Array<{ cmd: string; args: string[] }>;
}

export function fakeTrtexec(opts: { banner?: string; failBuild?: boolean } = {}): FakeTrtexec {
  const calls: FakeTrtexec['calls'] = [];
  const spawn: SpawnFn = (cmd, args) => {
    calls.push({ cmd, args });
    const child = new EventEmitter() as EventEmitter & { stdout: PassThrough; stderr: PassThrough; kill: () => boolean };
    child.stdout = new PassThrough();
    child.stderr = new PassThrough();
    child.kill = () => false; // it ends by itself on the next tick
    setImmediate(() => {
      let code = 0;
      if (args.includes('--help')) {
        child.stdout.write(`${opts.banner ?? '&&&& RUNNING TensorRT.trtexec [TensorRT v8602] # trtexec --help'}\n`);
      } else if (opts.failBuild) {
        child.stderr.write('[E] Error[4]: fake parser failure\n');
        code = 1;
      } else {
        const engine = args.find((a) => a.startsWith('--saveEngine='))!.slice('--saveEngine='.length);
        writeFileSync(engine, Buffer.from('fake-serialized-engine'));
        child.stdout.write('&&&& PASSED TensorRT.trtexec\n');
      }
      child.stdout.end();
      child.stderr.end();
      child.emit('close', code);
    });
    return child;
  };
  return { spawn, calls };
}
