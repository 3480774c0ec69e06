#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Release tarballs ship the esbuild
// bundle (dist/edge-agent.mjs) instead; see scripts/build.ts.
import { register } from 'tsx/esm/api';

// Every pending GStreamer appsink pull and bus poll holds a libuv thread, as do sharp's resizes:
// the default pool of 4 starves (4 cameras hung at start, and SIGTERM could not stop them). Node
// reads UV_THREADPOOL_SIZE before any line of this file runs (the ESM loader has started the pool),
// so without it in the environment the agent runs as a child that has it. The systemd unit and the
// release's bin/edge-agent set it, and run the agent directly.
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
  });
  // A terminal's Ctrl-C reaches the whole process group already; a kill of this process is passed on.
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  process.on('SIGINT', () => undefined);
  child.on('exit', (code, signal) => { process.exit(code ?? (signal ? 128 + ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 1) : 1)); });
} else {
  register();
  await import('../agent/src/cli/main.ts');
}
