#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Release tarballs ship the esbuild
// bundle (dist/edge-agent.mjs) instead; see scripts/build.ts.
import { register } from 'tsx/esm/api';

// Every pending GStreamer appsink pull and bus poll holds a libuv thread, as do sharp's resizes:
// the default pool of 4 would starve. Must be set before the pool is first used.
process.env.UV_THREADPOOL_SIZE ??= '16';
register();
await import('../agent/src/cli/main.ts');
