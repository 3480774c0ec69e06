/**
 * Board presets (configs/boards/NAME.json): the board-specific parts of capture and inference, so
 * that board quirks stay out of the core pipeline.
 */
import { readFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { compileSchema } from '../util/schema.js';
import { ConfigError } from '../util/errors.js';
import { parseJsonText } from './json-text.js';

export const BoardPreset = Type.Object({
  $comment: Type.Optional(Type.String()),
  capture: Type.Object({ decode: Type.Optional(Type.String()) }, { additionalProperties: false, default: {} }),
  providers: Type.Array(Type.String(), { default: ['cpu'] }),
}, { additionalProperties: false });
export type BoardPreset = Static<typeof BoardPreset>;

const validator = compileSchema(BoardPreset);

/** EF_BOARDS_DIR, else configs/boards/ of the checkout or release: from the sources (agent/src/config/) or from a bundle in dist/. */
export function boardsDir(): string {
  if (process.env.EF_BOARDS_DIR) return process.env.EF_BOARDS_DIR;
  // A bundle run by hand (node dist/edge-agent.mjs) looked for ../../../configs/boards from dist/, outside the tree.
  const candidates = ['../../../configs/boards/', '../configs/boards/'].map((u) => fileURLToPath(new URL(u, import.meta.url)));
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

export async function loadBoard(name: string | undefined): Promise<BoardPreset> {
  if (!name) return validator.parse({}, 'board preset');
  const file = join(boardsDir(), `${name}.json`);
  if (!existsSync(file)) {
    const known = existsSync(boardsDir()) ? readdirSync(boardsDir()).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
    throw new ConfigError(`Unknown board "${name}": expected one of ${known.join(', ') || '(no presets installed)'}`, [{ path: '/board', expected: known.join(' | '), received: name }]);
  }
  return validator.parse(parseJsonText(await readFile(file, 'utf8'), `Board preset ${file}`), `board preset ${file}`);
}
