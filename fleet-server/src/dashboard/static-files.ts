/**
 * The dashboard's static files (plain HTML/CSS/JS modules in ./public, no build step, nothing from a
 * CDN). Read once at start into memory: a fixed allowlist of names, so no request path ever reaches
 * the filesystem (no traversal to worry about).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';

/**
 * Where the files may be, in order: `EF_DASHBOARD_DIR`, next to this module (running from source),
 * `dashboard/` next to the bundle (dist/fleet-server.mjs → dist/dashboard/).
 */
export function publicDirCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...(env.EF_DASHBOARD_DIR ? [env.EF_DASHBOARD_DIR] : []),
    fileURLToPath(new URL('./public/', import.meta.url)),
    fileURLToPath(new URL('./dashboard/', import.meta.url)),
  ];
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface StaticFile {
  contentType: string;
  body: Buffer;
}

export class DashboardFilesError extends EdgeFleetError {
  constructor(message: string) {
    super('E_DASHBOARD_FILES', message);
  }
}

/** Files by URL path (`/ui/app.js`); `index.html` is also served at `/`. */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) { walk(p); continue; }
      const type = TYPES[extname(name)];
      if (!type) continue;
      files.set(`/ui/${relative(dir, p).split(sep).join('/')}`, { contentType: type, body: readFileSync(p) });
    }
  };
  try {
    walk(dir);
  } catch (err) {
    throw new DashboardFilesError(`Expected the dashboard's files in ${dir}, but they could not be read (${(err as Error).message}). Ship fleet-server/src/dashboard/public with the server.`);
  }
  if (!files.has('/ui/index.html')) throw new DashboardFilesError(`Expected ${join(dir, 'index.html')}; it is missing.`);
  return files;
}

/** The first candidate directory that holds index.html, or undefined. */
export function findPublicDir(candidates: string[]): string | undefined {
  return candidates.find((d) => existsSync(join(d, 'index.html')));
}
