import { dispatch, commandsDirOf } from './dispatch.js';
import { VERSION } from '../version.js';
import { exitWhenFlushed } from './exit.js';

await exitWhenFlushed(await dispatch({ binary: 'edge-agent', commandsDir: commandsDirOf(import.meta.url), argv: process.argv.slice(2), version: VERSION }));
