/**
 * The checkout's root, whether the tests run from their sources (tsx) or from a transpiled tree that
 * scripts/run-tests.ts writes under `.test-build/` (scripts/build-tests.ts), where `../..` from a
 * test is the tree, not the checkout: scripts run from there would see the tree's links, not the files.
 */
import { join, relative, resolve, sep } from 'node:path';

const here = import.meta.dirname;
const inTree = here.lastIndexOf(`${sep}.test-build${sep}`);
export const REPO = inTree >= 0 ? here.slice(0, inTree) : resolve(here, '../..');
/** The tree this module runs from (it is test/helpers/repo.js there), if it runs from one. */
const TREE = inTree >= 0 ? resolve(here, '../..') : undefined;

/**
 * The node arguments that run the checkout's TypeScript file `script` (a path from the checkout's
 * root): its transpiled copy when the tests run from a tree (no loader: about 1.3 s of CPU less per
 * start), else the .ts through tsx.
 */
export function tsEntry(script: string): string[] {
  if (!TREE) return ['--import', 'tsx', script];
  return ['--enable-source-maps', join(TREE, relative(REPO, resolve(REPO, script)).replace(/\.ts$/, '.js'))];
}
