/**
 * The checkout's root, whether the tests run from their sources (tsx) or from the transpiled tree that
 * scripts/run-tests.ts writes to `.test-build/` (scripts/build-tests.ts), where `../..` from a test
 * is the tree, not the checkout: scripts run from there would see the tree's links, not the files.
 */
import { resolve, sep } from 'node:path';

const here = import.meta.dirname;
const inTree = here.lastIndexOf(`${sep}.test-build${sep}`);
export const REPO = inTree >= 0 ? here.slice(0, inTree) : resolve(here, '../..');
