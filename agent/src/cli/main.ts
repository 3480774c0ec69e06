import { dispatch, commandsDirOf } from './dispatch.js';
import { VERSION } from '../version.js';

process.exitCode = await dispatch({ binary: 'edge-agent', commandsDir: commandsDirOf(import.meta.url), argv: process.argv.slice(2), version: VERSION });
