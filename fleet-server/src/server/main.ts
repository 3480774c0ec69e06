import { dispatch, commandsDirOf } from '../../../agent/src/cli/dispatch.js';
import { VERSION } from '../../../agent/src/version.js';

// `fleet-server serve ...` → commands/serve.ts
process.exitCode = await dispatch({ binary: 'fleet-server', commandsDir: commandsDirOf(import.meta.url), argv: process.argv.slice(2), version: VERSION });
