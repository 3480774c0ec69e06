/**
 * How to start a worker. From sources (tsx) the worker is a .ts file, started through
 * ts-worker.mjs which registers tsx inside the worker; in the tests' transpiled tree
 * (scripts/build-tests.ts) it is the `<name>.js` beside this module's caller; in a release bundle
 * (scripts/build.ts) each worker is bundled to `<name>.mjs` next to the binary.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function startWorker(metaUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const here = fileURLToPath(metaUrl);
  if (here.endsWith('.ts')) {
    const bootstrap = join(dirname(fileURLToPath(import.meta.url)), 'ts-worker.mjs');
    return new Worker(bootstrap, { ...options, argv: [join(dirname(here), `${name}.ts`), ...(options.argv ?? [])] });
  }
  if (here.endsWith('.js')) return new Worker(join(dirname(here), `${name}.js`), options);
  const bundled = join(dirname(here), `${name}.mjs`);
  if (!existsSync(bundled)) throw new Error(`worker bundle ${bundled} is missing; rebuild with scripts/build.ts`);
  return new Worker(bundled, options);
}
