// Bootstrap for workers run from TypeScript sources: registers tsx's loader inside the worker, then
// loads the .ts entry given as argv[2]. (Worker execArgv does not carry `--import` on Node 20.)
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';

register();
await import(pathToFileURL(process.argv[2]).href);
