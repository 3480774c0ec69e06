import { existsSync } from 'node:fs';

/** The `skip` option of a test that needs the assets `paths` (models, photos, videos): false, or which are missing. */
export function missingAssets(...paths: string[]): false | string {
  const missing = paths.filter((p) => !existsSync(p));
  return missing.length ? `${missing.join(', ')} missing (run ./scripts/setup.sh)` : false;
}
