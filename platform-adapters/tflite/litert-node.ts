/**
 * Loads LiteRT.js (`@litertjs/core`, a wasm build of TFLite's runtime) inside Node. LiteRT.js is
 * written for browsers and workers: its loader (`@litertjs/wasm-utils` createWasmLib) calls
 * `importScripts(url)` when that exists and then reads `self.ModuleFactory`. The emscripten glue is
 * CommonJS (`module.exports = ModuleFactory`), so the shim evaluates it as CommonJS, and hands the
 * wasm bytes from node_modules over as `Module.wasmBinary` so that nothing is fetched (DESIGN.md).
 */
import { createRequire } from 'node:module';
import { runInThisContext } from 'node:vm';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as LiteRtModule from '@litertjs/core';

export type LiteRt = typeof LiteRtModule;

export interface LiteRtLoadOptions {
  /** Folder holding litert_wasm_*.js/.wasm; defaults to the one inside node_modules. */
  wasmDir?: string;
  /** Where the wasm runtime's own stdout/stderr lines go (they are chatty INFO lines). */
  onRuntimeLog?: (line: string) => void;
}

let loaded: Promise<LiteRt> | undefined;

/** The wasm folder of the installed @litertjs/core, or undefined when the package is missing. */
export function defaultWasmDir(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    const main = require.resolve('@litertjs/core');
    const dir = join(dirname(main), '..', 'wasm');
    return existsSync(join(dir, 'litert_wasm_internal.js')) ? dir : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/**
 * Evaluates a CommonJS file as `require` would. Not `require` itself: the package is
 * `"type": "module"`, so Node 20 refuses to require its .js files unless a loader hook (tsx's CJS
 * hook in tests) happens to transform them; `edge-agent` registers only tsx's ESM hooks.
 */
function loadCommonJs(file: string): unknown {
  const module = { exports: {} as unknown };
  const wrapper = runInThisContext(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`, { filename: file }) as
    (e: unknown, r: NodeJS.Require, m: { exports: unknown }, f: string, d: string) => void;
  wrapper(module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}

/** Loads LiteRT.js once per thread (its wasm module is a process-wide singleton in the package). */
export function loadLiteRtNode(opts: LiteRtLoadOptions = {}): Promise<LiteRt> {
  loaded ??= doLoad(opts).catch((err: unknown) => {
    loaded = undefined;
    throw err;
  });
  return loaded;
}

async function doLoad(opts: LiteRtLoadOptions): Promise<LiteRt> {
  const wasmDir = opts.wasmDir ?? defaultWasmDir();
  if (!wasmDir) throw new Error('@litertjs/core is not installed (its wasm folder was not found); run npm install');
  const log = opts.onRuntimeLog ?? (() => undefined);
  const g = globalThis as Record<string, unknown>;
  g.self ??= globalThis;
  g.importScripts = (url: string): void => {
    const file = url.startsWith('file:') ? new URL(url).pathname : url;
    g.ModuleFactory = loadCommonJs(file);
    g.Module = {
      wasmBinary: readFileSync(file.replace(/\.js$/, '.wasm')),
      locateFile: (name: string) => join(wasmDir, name),
      print: log,
      printErr: log,
    };
  };
  const lt = (await import('@litertjs/core')) as LiteRt;
  // LiteRT.js tries WebGPU first and console.warns when `navigator` is missing (Node 20); that is
  // expected here (the wasm CPU path is what we use), so route the line to our log instead.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => log(args.map(String).join(' '));
  try {
    await lt.loadLiteRt(wasmDir.endsWith('/') ? wasmDir : `${wasmDir}/`);
  } finally {
    console.warn = warn;
  }
  return lt;
}
