/** Debian's chromium, driven by playwright-core, for the dashboard's browser tests. */
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
// Per docs: no GPU, no network side traffic, a fresh profile (launchPersistentContext's dir).
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The `skip` option of a browser test: false, or why it cannot run here. */
export const chromiumSkip: false | string = existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium; scripts/setup.sh lists it)`;
