#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Release tarballs ship the esbuild
// bundle (dist/edge-agent.mjs) instead; see scripts/build.ts.
import { register } from 'tsx/esm/api';

register();
await import('../agent/src/cli/main.ts');
