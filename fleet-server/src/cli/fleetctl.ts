import { dispatch, commandsDirOf } from '../../../agent/src/cli/dispatch.js';
import { VERSION } from '../../../agent/src/version.js';

// `fleetctl model import ...` → commands/model-import.ts
process.exitCode = await dispatch({ binary: 'fleetctl', commandsDir: commandsDirOf(import.meta.url), groups: ['model', 'device', 'rollout', 'key', 'operator', 'devices', 'models', 'rollouts', 'keys'], argv: process.argv.slice(2), version: VERSION });
