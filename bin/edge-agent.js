#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Release tarballs ship the esbuild
// bundle (dist/edge-agent.mjs) instead; see scripts/build.ts.
import { readFileSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
// Every pending GStreamer appsink pull and bus poll holds a libuv thread, as do sharp's resizes: a
// pool with as many threads as cameras starves (the default 4 hung four cameras at start, 16 hung
// 16, and SIGTERM could not stop them). Node reads UV_THREADPOOL_SIZE before any line of this file
// runs (the ESM loader has started the pool), so when the environment gives fewer threads than the
// config's cameras need (agent/src/capture/thread-pool.ts), the agent runs as a child that has them.
// The systemd unit and the release's bin/edge-agent set the pool for the most cameras the config allows.
const { threadPoolSizeFor, threadPoolSizeOf } = await import('../agent/src/capture/thread-pool.ts');
const needed = threadPoolSizeFor(configuredCameras(process.argv.slice(2)));
const env = process.env.UV_THREADPOOL_SIZE;
if (env === undefined || threadPoolSizeOf(env) < needed) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(16, needed)) },
  });
  // A terminal's Ctrl-C reaches the whole process group already; a kill of this process is passed on.
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  process.on('SIGINT', () => undefined);
  child.on('exit', (code, signal) => { process.exit(code ?? (signal ? 128 + ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 1) : 1)); });
} else {
  await import('../agent/src/cli/main.ts');
}

/** The number of cameras in the config that `--config` names; 0 where there is none or it does not read (the agent says why). */
function configuredCameras(argv) {
  const at = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  const path = at < 0 ? undefined : argv[at].startsWith('--config=') ? argv[at].slice('--config='.length) : argv[at + 1];
  try {
    const cameras = path ? JSON.parse(readFileSync(path, 'utf8')).cameras : undefined;
    return Array.isArray(cameras) ? cameras.length : 0;
  } catch {
    return 0;
  }
}
