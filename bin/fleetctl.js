#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx. Release tarballs ship the esbuild
// bundle (dist/fleetctl.mjs) instead; see scripts/build.ts.
import { register } from 'tsx/esm/api';

register();
await import('../fleet-server/src/cli/fleetctl.ts');
